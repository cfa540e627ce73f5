#include "gateway/admission.h"

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

#include "common/text.h"

namespace castgate {

std::string source_block(std::string_view ip) {
  std::string text(ip);
  unsigned char a6[16];
  if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), a6) == 1) {
    // An IPv4-mapped address is its IPv4 address; otherwise the /64.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, a6)) {
      char v4[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, a6 + 12, v4, sizeof v4);
      return v4;
    }
    std::fill(a6 + 8, a6 + 16, 0);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a6, buf, sizeof buf);
    return std::string(buf) + "/64";
  }
  return text;
}

StartupLimits parse_startups(const std::string& text) {
  auto parts = split(text, ':', false);
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("--max-startups " + text + ": expected START:RATE:FULL");
    return std::stoi(s);
  };
  if (parts.size() != 3)
    throw std::runtime_error("--max-startups " + text + ": expected START:RATE:FULL");
  StartupLimits l;
  l.start = number(parts[0]);
  l.rate_percent = number(parts[1]);
  l.full = number(parts[2]);
  if (l.full < 1 || l.start > l.full || l.rate_percent > 100)
    throw std::runtime_error("--max-startups " + text +
                             ": need START <= FULL, FULL >= 1 and RATE <= 100");
  return l;
}

StartupLimiter::StartupLimiter(StartupLimits limits, std::function<int()> random_percent)
    : limits_(limits), random_percent_(std::move(random_percent)) {}

StartupLimiter::Verdict StartupLimiter::admit(const std::string& ip) {
  std::string source = source_block(ip);
  std::lock_guard lock(mu_);
  if (total_ >= limits_.full) return Verdict::kFull;
  auto it = by_source_.find(source);
  if (it != by_source_.end() && it->second >= limits_.per_source) return Verdict::kSourceFull;
  if (total_ >= limits_.start && limits_.full > limits_.start) {
    // Refused with a probability rising linearly from rate% at `start` to 100% at `full`.
    int p = limits_.rate_percent + (100 - limits_.rate_percent) * (total_ - limits_.start) /
                                       (limits_.full - limits_.start);
    if (random_percent_() < p) return Verdict::kEarlyDrop;
  }
  ++total_;
  ++by_source_[source];
  return Verdict::kAdmitted;
}

void StartupLimiter::release(const std::string& ip) {
  std::string source = source_block(ip);
  std::lock_guard lock(mu_);
  if (total_ > 0) --total_;
  auto it = by_source_.find(source);
  if (it != by_source_.end() && --it->second <= 0) by_source_.erase(it);
}

int StartupLimiter::unauthenticated() const {
  std::lock_guard lock(mu_);
  return total_;
}

size_t StartupLimiter::sources() const {
  std::lock_guard lock(mu_);
  return by_source_.size();
}

std::string_view to_string(StartupLimiter::Verdict v) {
  switch (v) {
    case StartupLimiter::Verdict::kAdmitted:
      return "admitted";
    case StartupLimiter::Verdict::kFull:
      return "too many connections are signing in";
    case StartupLimiter::Verdict::kEarlyDrop:
      return "many connections are signing in (random early drop)";
    case StartupLimiter::Verdict::kSourceFull:
      return "too many connections from this source are signing in";
  }
  return "?";
}

SourceRate::SourceRate(int per_minute, size_t max_sources)
    : per_minute_(std::max(1, per_minute)), max_sources_(max_sources) {}

bool SourceRate::allow(const std::string& ip, std::chrono::steady_clock::time_point now) {
  std::string source = source_block(ip);
  std::lock_guard lock(mu_);
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) {
      // Forget the sources whose buckets are full again (they are like new ones).
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        double minutes = std::chrono::duration<double>(now - b->second.at).count() / 60;
        b = b->second.tokens + minutes * per_minute_ >= per_minute_ ? buckets_.erase(b)
                                                                    : std::next(b);
      }
    }
    // Still full (sources spread over many addresses, each of them busy): the new ones share
    // one bucket. Forgetting the busy ones would reset their limits.
    if (buckets_.size() >= max_sources_) return take(overflow_, now);
    it = buckets_.emplace(source, Bucket{per_minute_, now}).first;
  }
  return take(it->second, now);
}

bool SourceRate::take(Bucket& b, std::chrono::steady_clock::time_point now) const {
  double minutes = std::chrono::duration<double>(now - b.at).count() / 60;
  b.tokens = std::min(per_minute_, b.tokens + minutes * per_minute_);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace castgate
