// Two-level error policy (see docs/HACKING.md):
//  - user mistakes and bad files: throw sec::Error with what was wrong (and the file), caught once
//    in main -> message + non-zero exit. Use SEC_CHECK(cond, parts...) or sec::fail(parts...).
//  - broken internal invariants: SEC_ASSERT(cond) aborts with file:line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sec {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates its arguments with operator<< (a tiny stand-in for std::format).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat(parts...));
}

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace sec

#define SEC_CHECK(cond, ...)               \
  do {                                     \
    if (!(cond)) ::sec::fail(__VA_ARGS__); \
  } while (0)

#define SEC_ASSERT(cond)                                        \
  do {                                                          \
    if (!(cond)) ::sec::assert_fail(#cond, __FILE__, __LINE__); \
  } while (0)
