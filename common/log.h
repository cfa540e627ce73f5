// The gateway's own diagnostics. They go to stderr, one line each; stdout belongs to the audit
// and recording stream. Never pass secrets (tokens, keys, typed text) to these functions.
#pragma once

#include <string_view>

namespace castgate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view message);

inline void debug(std::string_view m) {
  write(Level::kDebug, m);
}
inline void info(std::string_view m) {
  write(Level::kInfo, m);
}
inline void warn(std::string_view m) {
  write(Level::kWarn, m);
}
inline void error(std::string_view m) {
  write(Level::kError, m);
}

}  // namespace castgate::log
