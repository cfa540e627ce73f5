// Counters a worker process adds to and its parent reads (and serves as Prometheus text), in memory
// shared between the two: the parent maps it before it forks the worker, like the session table.
// Every value is a 64-bit atomic: the parent reads each whole while the worker writes, and several
// worker threads add to the same counter. No label carries anything a user sends: every label value
// is one of a fixed list below.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace castgate {

// Sign-in methods (castgate.identity.auth_method and auth.failure's castgate.auth_method).
inline constexpr std::array<std::string_view, 6> kSignInMethods = {
    "publickey", "certificate", "oidc-device", "workload-jwt", "jump", "other"};
// Policy refusals (policy.denied's castgate.denial, and forwarding refused by policy).
inline constexpr std::array<std::string_view, 12> kRefusalReasons = {
    "policy",         "mfa_required", "outside_hours",  "locked",
    "unknown_target", "bad_login",    "listener_bound", "certificate_principal",
    "no_target",      "port_forward", "jump",           "other"};
// Upper bounds of the sign-in duration histogram, in seconds: a key takes milliseconds, a device
// sign-in as long as the person takes to approve it.
inline constexpr std::array<double, 12> kSignInBuckets = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                          5,    10,  30,   60,  120, 300};

enum class Metric : size_t {
  kConnections,       // connection.accepted
  kSessions,          // session.start
  kUpstreamFailures,  // upstream.failed
  kAlerts,            // alert
  kLimitsExceeded,    // limit.exceeded
  kBytesToTarget,     // session.end's castgate.bytes
  kBytesToUser,       //
  kSignInMicros,      // sum of successful sign-ins' durations
  kRecordedLines,     // published by the worker: its stdout writer's totals
  kRecordedBytes,     //
  kLostLines,         //
  kBackpressure,      // times the writer's queue was found full
  kBacklogBytes,      // a gauge: queued for stdout now
  kSignIns,           // kSignInMethods.size() x {success, failure}
  kRefusals = kSignIns + kSignInMethods.size() * 2,
  kSignInBucket = kRefusals + kRefusalReasons.size(),  // cumulative, then +Inf (the count)
  kCount = kSignInBucket + kSignInBuckets.size() + 1,
};

constexpr size_t metric_index(Metric m) {
  return static_cast<size_t>(m);
}
constexpr Metric operator+(Metric m, size_t n) {
  return static_cast<Metric>(metric_index(m) + n);
}
// A value the worker sets (a gauge), as opposed to one that only grows while it runs.
constexpr bool is_gauge(Metric m) {
  return m == Metric::kBacklogBytes;
}

// A method's or reason's place in its list; the last ("other") for anything not listed.
size_t sign_in_method_index(std::string_view method);
size_t refusal_reason_index(std::string_view reason);

using MetricValues = std::array<uint64_t, metric_index(Metric::kCount)>;

class WorkerMetrics {
 public:
  WorkerMetrics();  // maps the shared block (zeroed)
  ~WorkerMetrics();
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // Worker.
  void add(Metric m, uint64_t n = 1);
  void set(Metric m, uint64_t value);
  void sign_in(std::string_view method, bool success, std::chrono::microseconds took);

  // Parent, any time.
  MetricValues read() const;
  // Parent, once the worker is dead: zeroes the block for the next worker.
  void clear();

 private:
  uint64_t* values_ = nullptr;
};

// The parent's sum of its workers' blocks. A worker is sandboxed but parses the network: one
// taken over could write anything into its block. So each counter is served as the highest value
// seen from that worker (a worker cannot make a counter go down, its own or another's), sums
// saturate instead of wrapping, and what a worker counted stays once it ends (its gauges go).
class MetricTotals {
 public:
  MetricTotals() = default;
  explicit MetricTotals(size_t workers) : seen_(workers), free_(workers, false) {}
  void observe(size_t worker, const MetricValues& values);
  void retire(size_t worker);
  // A place for one more worker process (a reload's replacement); returns its index.
  size_t add();
  // The worker at `worker` is gone for good (a retired one ended): retire(), and its place may
  // be reused.
  void release(size_t worker);
  MetricValues totals() const;

 private:
  std::vector<MetricValues> seen_;
  std::vector<bool> free_;
  MetricValues retired_{};
};

}  // namespace castgate
