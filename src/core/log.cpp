#include "core/log.h"

#include <unistd.h>

#include <cstdio>

namespace sec {

namespace {
LogLevel g_level = LogLevel::Info;

std::string format_duration(double s) {
  if (s < 0 || s > 1e7) return "?";
  int t = int(s + 0.5);
  char b[32];
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    std::snprintf(b, sizeof b, "%dm%02ds", t / 60, t % 60);
  else
    std::snprintf(b, sizeof b, "%ds", t);
  return b;
}
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(LogLevel level, const std::string& msg) {
  if (int(level) > int(g_level)) return;
  std::fprintf(stderr, "%s%s\n", level == LogLevel::Warn ? "secateur: warning: " : "secateur: ", msg.c_str());
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      tty_(isatty(2)) {}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.2 : 5.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (drawn_ || elapsed_seconds() > 1.0) draw(true);
}

void Progress::draw(bool final) {
  if (int(g_level) < int(LogLevel::Info)) return;
  double el = elapsed_seconds();
  double rate = el > 0 ? double(done_) / el : 0;
  double eta = rate > 0 ? double(total_ - done_) / rate : -1;
  char line[256];
  std::snprintf(line, sizeof line, "%s  %lld/%lld %s  %.1f %s/s  %s %s", label_.c_str(), (long long)done_,
                (long long)total_, unit_.c_str(), rate, unit_.c_str(), final ? "took" : "ETA",
                format_duration(final ? el : eta).c_str());
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line);
  drawn_ = true;
}

}  // namespace sec
