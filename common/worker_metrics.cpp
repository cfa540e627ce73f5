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
  add(Metric::kSignInMicros, static_cast<uint64_t>(std::max<int64_t>(0, took.count())));
  double seconds = static_cast<double>(took.count()) / 1e6;
  for (size_t b = 0; b < kSignInBuckets.size(); ++b)
    if (seconds <= kSignInBuckets[b]) add(Metric::kSignInBucket + b);
  add(Metric::kSignInBucket + kSignInBuckets.size());  // +Inf: every one
}

MetricValues WorkerMetrics::read() const {
  MetricValues v{};
  for (size_t i = 0; i < v.size(); ++i) v[i] = __atomic_load_n(&values_[i], __ATOMIC_RELAXED);
  return v;
}

void WorkerMetrics::retire_into(MetricValues& totals) {
  MetricValues v = read();
  for (size_t i = 0; i < v.size(); ++i)
    if (!is_gauge(static_cast<Metric>(i))) totals[i] += v[i];
  std::memset(values_, 0, kBytes);
}

}  // namespace castgate
