#include "common/worker_metrics.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace castgate {
namespace {
constexpr size_t kBytes = sizeof(uint64_t) * metric_index(Metric::kCount);

size_t index_in(std::string_view name, const auto& list) {
  auto it = std::find(list.begin(), list.end(), name);
  return it == list.end() ? list.size() - 1 : static_cast<size_t>(it - list.begin());
}
}  // namespace

size_t sign_in_method_index(std::string_view method) {
  return index_in(method, kSignInMethods);
}

size_t refusal_reason_index(std::string_view reason) {
  return index_in(reason, kRefusalReasons);
}

WorkerMetrics::WorkerMetrics() {
  void* mem = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    throw std::runtime_error(std::string("cannot map the metrics block: ") + std::strerror(errno));
  values_ = static_cast<uint64_t*>(mem);
}

WorkerMetrics::~WorkerMetrics() {
  munmap(values_, kBytes);
}

void WorkerMetrics::add(Metric m, uint64_t n) {
  __atomic_fetch_add(&values_[metric_index(m)], n, __ATOMIC_RELAXED);
}

void WorkerMetrics::set(Metric m, uint64_t value) {
  __atomic_store_n(&values_[metric_index(m)], value, __ATOMIC_RELAXED);
}

void WorkerMetrics::sign_in(std::string_view method, bool success, std::chrono::microseconds took) {
  add(Metric::kSignIns + (sign_in_method_index(method) * 2 + (success ? 0 : 1)));
  if (!success) return;
  // The count (+Inf) first, then the buckets from the widest down, each add ordered after the
  // one before: the parent reads them the other way round (read() goes up), so a scrape never
  // sees a bucket above a wider one or above the count.
  __atomic_fetch_add(&values_[metric_index(Metric::kSignInBucket + kSignInBuckets.size())], 1,
                     __ATOMIC_SEQ_CST);
  double seconds = static_cast<double>(took.count()) / 1e6;
  for (size_t b = kSignInBuckets.size(); b-- > 0;)
    if (seconds <= kSignInBuckets[b])
      __atomic_fetch_add(&values_[metric_index(Metric::kSignInBucket + b)], 1, __ATOMIC_SEQ_CST);
  add(Metric::kSignInMicros, static_cast<uint64_t>(std::max<int64_t>(0, took.count())));
}

MetricValues WorkerMetrics::read() const {
  MetricValues v{};
  for (size_t i = 0; i < v.size(); ++i) v[i] = __atomic_load_n(&values_[i], __ATOMIC_SEQ_CST);
  return v;
}

void WorkerMetrics::clear() {
  for (size_t i = 0; i < metric_index(Metric::kCount); ++i)
    __atomic_store_n(&values_[i], 0, __ATOMIC_RELAXED);
}

namespace {
uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a + b < a ? UINT64_MAX : a + b;
}
}  // namespace

void MetricTotals::observe(size_t worker, const MetricValues& values) {
  MetricValues& seen = seen_.at(worker);
  for (size_t i = 0; i < values.size(); ++i)
    seen[i] = is_gauge(static_cast<Metric>(i)) ? values[i] : std::max(seen[i], values[i]);
}

void MetricTotals::retire(size_t worker) {
  MetricValues& seen = seen_.at(worker);
  for (size_t i = 0; i < seen.size(); ++i)
    if (!is_gauge(static_cast<Metric>(i))) retired_[i] = saturating_add(retired_[i], seen[i]);
  seen = {};
}

void MetricTotals::release(size_t worker) {
  retire(worker);
  free_.at(worker) = true;
}

size_t MetricTotals::add() {
  // A retired place is empty (retire() moved its counts into retired_): it is reused.
  for (size_t i = 0; i < seen_.size(); ++i)
    if (free_[i]) {
      free_[i] = false;
      return i;
    }
  seen_.emplace_back();
  free_.push_back(false);
  return seen_.size() - 1;
}

MetricValues MetricTotals::totals() const {
  MetricValues t = retired_;
  for (const auto& seen : seen_)
    for (size_t i = 0; i < t.size(); ++i) t[i] = saturating_add(t[i], seen[i]);
  return t;
}

}  // namespace castgate
