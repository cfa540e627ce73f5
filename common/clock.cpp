#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace castgate {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t unix_micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string rfc3339_micros(std::chrono::system_clock::time_point t) {
  int64_t us = unix_micros(t);
  int64_t secs = us / 1000000;
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

}  // namespace castgate

namespace castgate {

void append_rfc3339_micros(std::string& out, std::chrono::system_clock::time_point t) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local std::string cached;  // "YYYY-MM-DDTHH:MM:SS."
  int64_t us = unix_micros(t);
  int64_t secs = us / 1000000, frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  if (secs != cached_second) {
    std::string full = rfc3339_micros(t);
    cached = full.substr(0, full.size() - 7);
    cached_second = secs;
  }
  out += cached;
  char digits[7] = {'0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  out.append(digits, 7);
}

}  // namespace castgate
