#include "io/json.h"

#include "core/error.h"

namespace sec {

// Nesting depth of a JSON text, counting brackets outside strings (a lower bound on what the parser
// would build; a text the parser rejects anyway may be over-counted, which only changes the message).
static void check_depth(std::string_view text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      SEC_CHECK(++depth <= kMaxJsonDepth, where, ": JSON nested more than ", kMaxJsonDepth, " levels deep (at byte ", i,
                "); not a file secateur reads");
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& where, const char* what) {
  check_depth(text, where);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": ", what, ": ", e.what());
  }
}

}  // namespace sec
