// Time zones from the system's zoneinfo files (TZif, RFC 8536), for policy rules' hours: the
// offset from UTC at any instant, daylight saving included. libstdc++ 12 has no std::chrono
// time zone database; reading TZif ourselves keeps the zones thread-safe (the C library's are
// process-wide) and lets the parent read them before any process is sandboxed.
//
// Beyond the last transition a file lists (2037 in Debian's "fat" files), the last offset holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace castgate {

class TimeZone {
 public:
  // "UTC" without a file; else the file under $TZDIR or /usr/share/zoneinfo. The name must be
  // a zone name ("Europe/Berlin"): letters, digits, "_", "-", "+" and "/" between parts.
  // Throws std::runtime_error.
  static TimeZone load(const std::string& name);
  // A TZif file's bytes (untrusted: bounded and checked). Throws std::runtime_error.
  static TimeZone parse(std::string_view bytes, const std::string& name);
  static TimeZone utc();

  const std::string& name() const { return name_; }
  std::chrono::seconds offset_at(std::chrono::sys_seconds t) const;
  // Local wall-clock seconds since 1970-01-01 00:00 at `t`.
  int64_t local_seconds(std::chrono::sys_seconds t) const;
  // The instant whose local time is `local` (the later one when a clock change repeats it, the
  // first after the gap when it skips it).
  std::chrono::sys_seconds from_local(int64_t local) const;

 private:
  std::string name_;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int32_t> offsets_;      // after each transition
  int32_t initial_offset_ = 0;        // before the first
};

}  // namespace castgate
