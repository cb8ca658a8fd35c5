// Diagnostics go to stderr (results go to stdout). Progress lines show rate and ETA.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace sec {

enum class LogLevel { Quiet = 0, Warn = 1, Info = 2, Debug = 3 };
void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& msg);  // "secateur: msg" (warnings: "warning: msg")

template <class... P>
void log_info(const P&... p) {
  log_line(LogLevel::Info, cat(p...));
}
template <class... P>
void log_warn(const P&... p) {
  log_line(LogLevel::Warn, cat(p...));
}
template <class... P>
void log_debug(const P&... p) {
  log_line(LogLevel::Debug, cat(p...));
}

// A progress line on stderr: "label  done/total unit  rate unit/s  ETA". Redraws in place on a
// terminal (at most ~5 times a second), otherwise prints a line every few seconds. Quiet when the
// log level is below Info.
class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();                // finishes the line
  void update(int64_t done);  // absolute count
  void add(int64_t n) { update(done_ + n); }
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_, finished_ = false, drawn_ = false;
};

}  // namespace sec
