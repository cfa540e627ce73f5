// castgate's metrics: what each worker process counts (from the events its sessions write, and
// its stdout writer's totals) and how the parent serves the sum as Prometheus text on the health
// port (GET /metrics).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "asciicast/session_log.h"
#include "common/worker_metrics.h"

namespace castgate {

// Counts, in a worker, what the record says: connections, sessions, sign-ins by method and
// outcome (and how long a successful one took from the connection's start), policy refusals by
// reason, upstream failures, alerts, limits, and at each session's end the bytes it relayed.
class MetricsRecorder final : public asciicast::EventObserver {
 public:
  explicit MetricsRecorder(WorkerMetrics& metrics) : metrics_(metrics) {}
  void observe(const asciicast::EventKind& kind, const nlohmann::json& fields,
               std::chrono::microseconds since_start) override;

 private:
  WorkerMetrics& metrics_;
};

// What only the parent knows, for the exposition.
struct GatewayGauges {
  uint64_t live_sessions = 0;
  uint64_t workers_running = 0;
  uint64_t workers_configured = 0;
  bool draining = false;
  bool ready = false;
  bool signer_up = false;
  uint64_t worker_restarts = 0;
  uint64_t workers_retiring = 0;  // replaced after a reload, serving what they have
  uint64_t reloads_ok = 0, reloads_failed = 0;
  bool last_reload_ok = true;
  // connection refusals before a worker got the connection, by reason
  std::array<uint64_t, 5> refused{};
};
inline constexpr std::array<std::string_view, 5> kAdmissionRefusals = {
    "draining", "full", "early_drop", "per_source", "no_worker"};

// Prometheus text exposition format 0.0.4 of `totals` (the workers' values summed) and `gauges`.
std::string prometheus_text(const MetricValues& totals, const GatewayGauges& gauges);

}  // namespace castgate
