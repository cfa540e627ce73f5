// Time is injected so that token expiry, timeouts and asciicast timing can be tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace castgate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps, token validity, certificates).
  virtual std::chrono::system_clock::time_point now() const = 0;
  // Monotonic time (for timeouts and relative asciicast times).
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
  static const SystemClock& instance();
};

// A clock that only moves when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start = {})
      : wall_(start), steady_(std::chrono::steady_clock::time_point{}) {}
  std::chrono::system_clock::time_point now() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }
  void advance(std::chrono::microseconds d) {
    std::lock_guard lock(mu_);
    wall_ += d;
    steady_ += d;
  }

 private:
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point wall_;
  std::chrono::steady_clock::time_point steady_;
};

int64_t unix_seconds(std::chrono::system_clock::time_point t);
int64_t unix_micros(std::chrono::system_clock::time_point t);
// RFC 3339 UTC with microseconds: 2026-11-22T01:42:25.123456Z
std::string rfc3339_micros(std::chrono::system_clock::time_point t);
// The same, appended to `out`; remembers the formatted second so that most calls only write the
// microseconds (one per thread, for the recording hot path).
void append_rfc3339_micros(std::string& out, std::chrono::system_clock::time_point t);

}  // namespace castgate
