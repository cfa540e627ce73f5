#include "gateway/admission.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "common/output_lock.h"
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

struct SourceRate::Shared {
  pthread_mutex_t mu;  // process-shared and robust: a worker may die holding it
  Bucket overflow;     // shared by new sources while the table is full of busy ones
  Bucket table[1];     // max_sources_ of them
};

SourceRate::SourceRate(int per_minute, size_t max_sources)
    : per_minute_(std::max(1, per_minute)), max_sources_(std::max<size_t>(1, max_sources)) {
  bytes_ = sizeof(Shared) + (max_sources_ - 1) * sizeof(Bucket);
  void* mem = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    throw std::runtime_error(std::string("cannot map the device sign-in table: ") +
                             std::strerror(errno));
  shared_ = static_cast<Shared*>(mem);
  init_shared_mutex(&shared_->mu);
  shared_->overflow = Bucket{1, {}, per_minute_, 0};
}

SourceRate::~SourceRate() {
  munmap(shared_, bytes_);
}

bool SourceRate::allow(const std::string& ip, std::chrono::steady_clock::time_point now) {
  std::string source = source_block(ip).substr(0, kMaxSource);
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  // Shared with the other workers, one of which may be compromised and never let go: waiting is
  // bounded, and a table that cannot be had refuses (fail closed) rather than stalls this thread.
  timespec deadline{};
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += 50'000'000;
  if (deadline.tv_nsec >= 1'000'000'000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1'000'000'000;
  }
  int locked = pthread_mutex_timedlock(&shared_->mu, &deadline);
  if (locked == EOWNERDEAD)
    pthread_mutex_consistent(&shared_->mu);
  else if (locked != 0)
    return false;
  struct Unlock {
    pthread_mutex_t* mu;
    ~Unlock() { pthread_mutex_unlock(mu); }
  } unlock{&shared_->mu};
  size_t home = std::hash<std::string>{}(source) % max_sources_;
  Bucket* reusable = nullptr;
  for (size_t i = 0; i < std::min(kProbes, max_sources_); ++i) {
    Bucket& b = shared_->table[(home + i) % max_sources_];
    if (b.len == source.size() && std::memcmp(b.source, source.data(), b.len) == 0)
      return take(b, now_ns);
    // A free bucket, or one full again (its source is like a new one), may be taken.
    if (!reusable && (b.len == 0 || refilled(b, now_ns))) reusable = &b;
  }
  // Every bucket nearby is busy: the new source shares one bucket with the others like it.
  // Forgetting the busy ones would reset their limits.
  if (!reusable) return take(shared_->overflow, now_ns);
  reusable->len = static_cast<uint8_t>(source.size());
  std::memcpy(reusable->source, source.data(), source.size());
  reusable->tokens = per_minute_;
  reusable->at_ns = now_ns;
  return take(*reusable, now_ns);
}

bool SourceRate::refilled(const Bucket& b, int64_t now_ns) const {
  double minutes = static_cast<double>(now_ns - b.at_ns) / 60e9;
  return b.tokens + minutes * per_minute_ >= per_minute_;
}

bool SourceRate::take(Bucket& b, int64_t now_ns) const {
  double minutes = static_cast<double>(now_ns - b.at_ns) / 60e9;
  b.tokens = std::min(per_minute_, b.tokens + minutes * per_minute_);
  b.at_ns = now_ns;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace castgate
