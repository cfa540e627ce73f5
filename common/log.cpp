#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/text.h"

namespace castgate::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level level) {
  g_level.store(static_cast<int>(level));
}
bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load();
}

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  std::string line = rfc3339_micros(std::chrono::system_clock::now());
  line += " castgate ";
  line += kNames[static_cast<int>(level)];
  line += ": ";
  // Messages quote untrusted text (user names, paths, provider answers): one gate here keeps
  // control characters and invalid UTF-8 from acting on whoever reads the log in a terminal.
  line += printable(message, 64 * 1024, /*escape_backslash=*/false);
  line += '\n';
  // One write(2) per line so lines from several threads do not interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace castgate::log
