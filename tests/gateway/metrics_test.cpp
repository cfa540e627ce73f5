#include <doctest/doctest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/worker_metrics.h"
#include "gateway/metrics.h"

using namespace castgate;
using nlohmann::json;
using std::chrono::microseconds;

namespace {
uint64_t at(const MetricValues& v, Metric m) {
  return v[metric_index(m)];
}
bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}
}  // namespace

TEST_CASE("metrics: events counted by what the record says, labels from fixed lists") {
  WorkerMetrics m;
  MetricsRecorder r(m);
  auto ev = [&](std::string action, json fields, microseconds age = microseconds(0)) {
    r.observe(asciicast::EventKind{std::move(action), "", ""}, fields, age);
  };
  ev("connection.accepted", json::object());
  ev("auth.failure", {{"castgate", {{"auth_method", "publickey"}}}});
  ev("auth.success", {{"castgate", {{"auth_method", "oidc-device"}}}}, microseconds(42'000'000));
  ev("auth.failure", {{"castgate", {{"auth_method", "pass\"word\n{evil}"}}}});  // not a label
  ev("auth.success", {{"castgate", {{"auth_method", 7}}}}, microseconds(-5));   // never negative
  ev("policy.denied", {{"castgate", {{"denial", "unknown_target"}}}});
  ev("policy.denied", {{"castgate", "not an object"}});
  ev("jump.denied", json::object());
  ev("session.start", json::object());
  ev("session.end", {{"castgate", {{"bytes", {{"to_target", 10}, {"to_user", 2000}}}}}});
  ev("session.end", {{"castgate", {{"bytes", {{"to_target", -3}, {"to_user", "x"}}}}}});
  ev("asciicast.output", json::object());  // not a metric
  auto v = m.read();
  CHECK(at(v, Metric::kConnections) == 1);
  CHECK(at(v, Metric::kSessions) == 1);
  CHECK(at(v, Metric::kSignIns + (sign_in_method_index("publickey") * 2 + 1)) == 1);
  CHECK(at(v, Metric::kSignIns + sign_in_method_index("oidc-device") * 2) == 1);
  CHECK(at(v, Metric::kSignIns + (sign_in_method_index("other") * 2 + 1)) == 1);
  CHECK(at(v, Metric::kSignIns + sign_in_method_index("other") * 2) == 1);
  CHECK(at(v, Metric::kRefusals + refusal_reason_index("unknown_target")) == 1);
  CHECK(at(v, Metric::kRefusals + refusal_reason_index("other")) == 1);
  CHECK(at(v, Metric::kRefusals + refusal_reason_index("jump")) == 1);
  CHECK(at(v, Metric::kBytesToTarget) == 10);
  CHECK(at(v, Metric::kBytesToUser) == 2000);
  CHECK(at(v, Metric::kSignInMicros) == 42'000'000);
  // The histogram is cumulative: 42 s falls in the buckets from 60 s up, 0 s in every one.
  CHECK(at(v, Metric::kSignInBucket + 0) == 1);   // le 0.05: the instant one
  CHECK(at(v, Metric::kSignInBucket + 8) == 1);   // le 30
  CHECK(at(v, Metric::kSignInBucket + 9) == 2);   // le 60
  CHECK(at(v, Metric::kSignInBucket + 12) == 2);  // +Inf
}

TEST_CASE("metrics: a dead worker's counters are kept, its gauges are not") {
  WorkerMetrics m;
  m.add(Metric::kConnections, 5);
  m.set(Metric::kRecordedBytes, 1000);
  m.set(Metric::kBacklogBytes, 300);
  MetricTotals totals(2);
  totals.observe(0, m.read());
  CHECK(at(totals.totals(), Metric::kBacklogBytes) == 300);
  totals.retire(0);
  m.clear();
  CHECK(m.read() == MetricValues{});  // zeroed for the next worker
  auto t = totals.totals();
  CHECK(at(t, Metric::kConnections) == 5);
  CHECK(at(t, Metric::kRecordedBytes) == 1000);
  CHECK(at(t, Metric::kBacklogBytes) == 0);
  m.add(Metric::kConnections, 2);  // the next worker in that slot
  totals.observe(0, m.read());
  CHECK(at(totals.totals(), Metric::kConnections) == 7);
}

TEST_CASE("metrics: a worker taken over cannot make a counter go down, its own or another's") {
  MetricTotals totals(2);
  MetricValues honest{}, evil{};
  honest[metric_index(Metric::kLostLines)] = 3;
  honest[metric_index(Metric::kConnections)] = 10;
  totals.observe(0, honest);
  evil[metric_index(Metric::kConnections)] = UINT64_MAX;    // would wrap the sum to 9
  evil[metric_index(Metric::kLostLines)] = UINT64_MAX - 2;  // would wrap honest's 3 to 0
  totals.observe(1, evil);
  auto t = totals.totals();
  CHECK(at(t, Metric::kConnections) == UINT64_MAX);  // saturated, not wrapped
  CHECK(at(t, Metric::kLostLines) == UINT64_MAX);
  evil = {};  // and back down: ignored
  totals.observe(1, evil);
  CHECK(at(totals.totals(), Metric::kConnections) == UINT64_MAX);
  totals.retire(1);
  totals.observe(0, honest);
  CHECK(at(totals.totals(), Metric::kConnections) == UINT64_MAX);
  CHECK(at(totals.totals(), Metric::kLostLines) == UINT64_MAX);
}

TEST_CASE("metrics: Prometheus text exposition") {
  MetricValues v{};
  v[metric_index(Metric::kConnections)] = 3;
  v[metric_index(Metric::kSignInBucket + kSignInBuckets.size())] = 2;
  v[metric_index(Metric::kSignInMicros)] = 1'500'000;
  GatewayGauges g;
  g.live_sessions = 1;
  g.ready = true;
  g.refused[1] = 4;
  std::string text = "\n" + prometheus_text(v, g);
  CHECK(has_line(text, "castgate_connections_total 3"));
  CHECK(has_line(text, "castgate_sessions_active 1"));
  CHECK(has_line(text, "castgate_ready 1"));
  CHECK(has_line(text, "castgate_connections_refused_total{reason=\"full\"} 4"));
  CHECK(has_line(text, "# TYPE castgate_sign_in_duration_seconds histogram"));
  CHECK(has_line(text, "castgate_sign_in_duration_seconds_bucket{le=\"0.05\"} 0"));
  CHECK(has_line(text, "castgate_sign_in_duration_seconds_bucket{le=\"2.5\"} 0"));
  CHECK(has_line(text, "castgate_sign_in_duration_seconds_bucket{le=\"+Inf\"} 2"));
  CHECK(has_line(text, "castgate_sign_in_duration_seconds_sum 1.500000"));
  CHECK(has_line(text, "castgate_sign_in_duration_seconds_count 2"));
  CHECK(has_line(text, "castgate_sign_ins_total{method=\"workload-jwt\",outcome=\"failure\"} 0"));
  CHECK(text.back() == '\n');
}
