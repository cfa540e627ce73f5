// Who may start signing in. Every connection costs memory, a key exchange and, with the device
// flow, a device authorization and polling at the identity provider; a stranger who has not signed
// in yet must not be able to spend them without bound, nor crowd out everyone else.
//
//  * StartupLimiter: connections that have not signed in yet, globally and per source, like
//    OpenSSH's MaxStartups (random early drop between `start` and `full`) and
//    PerSourceMaxStartups. A source is an IPv4 address, or an IPv6 /64 (one host's share).
//  * SourceRate: a token bucket per source, for device sign-ins started. Its table is bounded.
//
// The StartupLimiter lives in castgate's parent process, which accepts connections; SourceRate is
// shared by the worker processes. Both are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace castgate {

// The source block of an address: the IPv4 address itself, or the /64 of an IPv6 address.
std::string source_block(std::string_view ip);

struct StartupLimits {
  int start = 64;         // below this many signing-in connections, every one is admitted
  int rate_percent = 30;  // at `start`, this share of new ones is refused, rising to 100% at full
  int full = 256;         // at this many, every new one is refused
  int per_source = 16;    // signing-in connections one source may have
};

// "start:rate:full" as OpenSSH writes MaxStartups; throws std::runtime_error if malformed.
StartupLimits parse_startups(const std::string& text);

class StartupLimiter {
 public:
  enum class Verdict { kAdmitted, kFull, kEarlyDrop, kSourceFull };

  // `random_percent` returns a number in [0, 100): injectable for tests.
  StartupLimiter(StartupLimits limits, std::function<int()> random_percent);
  Verdict admit(const std::string& ip);
  // The connection signed in or ended.
  void release(const std::string& ip);
  int unauthenticated() const;
  size_t sources() const;

 private:
  const StartupLimits limits_;
  const std::function<int()> random_percent_;
  mutable std::mutex mu_;
  int total_ = 0;
  std::unordered_map<std::string, int> by_source_;
};

std::string_view to_string(StartupLimiter::Verdict v);

// Its table lives in shared memory made before the worker processes fork, so one limit holds for
// a source whichever worker serves its connections.
class SourceRate {
 public:
  // `per_minute` tokens a minute per source, holding at most `per_minute` (the burst). Throws
  // std::runtime_error if the shared table cannot be mapped.
  explicit SourceRate(int per_minute, size_t max_sources = 8192);
  ~SourceRate();
  SourceRate(const SourceRate&) = delete;
  SourceRate& operator=(const SourceRate&) = delete;
  bool allow(const std::string& ip, std::chrono::steady_clock::time_point now);

 private:
  static constexpr size_t kMaxSource = 47;  // an IPv6 /64 or an IPv4 address, as text
  static constexpr size_t kProbes = 16;
  struct Bucket {
    uint8_t len;  // 0: free
    char source[kMaxSource];
    double tokens;
    int64_t at_ns;  // steady clock (CLOCK_MONOTONIC: the same in every process)
  };
  struct Shared;
  bool take(Bucket& b, int64_t now_ns) const;
  bool refilled(const Bucket& b, int64_t now_ns) const;
  const double per_minute_;
  const size_t max_sources_;
  Shared* shared_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace castgate
