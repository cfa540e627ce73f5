#include "gateway/metrics.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace castgate {
namespace {

using nlohmann::json;

std::string_view string_at(const json& fields, const char* outer, const char* inner) {
  auto o = fields.find(outer);
  if (o == fields.end() || !o->is_object()) return {};
  auto i = o->find(inner);
  if (i == o->end() || !i->is_string()) return {};
  return i->get_ref<const std::string&>();
}

uint64_t bytes_at(const json& fields, const char* direction) {
  auto c = fields.find("castgate");
  if (c == fields.end() || !c->is_object()) return 0;
  auto b = c->find("bytes");
  if (b == c->end() || !b->is_object()) return 0;
  auto d = b->find(direction);
  if (d == b->end() || !d->is_number_integer()) return 0;
  if (d->is_number_unsigned()) return d->get<uint64_t>();
  return static_cast<uint64_t>(std::max<int64_t>(0, d->get<int64_t>()));
}

class Text {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP castgate_";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE castgate_";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // A family of one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    sample(name, "", value);
  }
  void sample(std::string_view name, std::string_view labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += "castgate_";
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + std::string(value) + "\"";
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", s);
  return buf;
}

}  // namespace

void MetricsRecorder::observe(const asciicast::EventKind& kind, const json& fields,
                              std::chrono::microseconds since_start) {
  const std::string& a = kind.action;
  if (a == "connection.accepted") {
    metrics_.add(Metric::kConnections);
  } else if (a == "auth.success") {
    metrics_.sign_in(string_at(fields, "castgate", "auth_method"), true, since_start);
  } else if (a == "auth.failure") {
    metrics_.sign_in(string_at(fields, "castgate", "auth_method"), false, since_start);
  } else if (a == "policy.denied") {
    metrics_.add(Metric::kRefusals + refusal_reason_index(string_at(fields, "castgate", "denial")));
  } else if (a == "port_forward.denied") {
    metrics_.add(Metric::kRefusals + refusal_reason_index("port_forward"));
  } else if (a == "jump.denied") {
    metrics_.add(Metric::kRefusals + refusal_reason_index("jump"));
  } else if (a == "session.start") {
    metrics_.add(Metric::kSessions);
  } else if (a == "upstream.failed") {
    metrics_.add(Metric::kUpstreamFailures);
  } else if (a == "alert") {
    metrics_.add(Metric::kAlerts);
  } else if (a == "limit.exceeded") {
    metrics_.add(Metric::kLimitsExceeded);
  } else if (a == "session.end") {
    metrics_.add(Metric::kBytesToTarget, bytes_at(fields, "to_target"));
    metrics_.add(Metric::kBytesToUser, bytes_at(fields, "to_user"));
  }
}

std::string prometheus_text(const MetricValues& v, const GatewayGauges& g) {
  auto at = [&](Metric m) { return v[metric_index(m)]; };
  Text t;
  t.single("up", "gauge", "1 while castgate serves (this answer).", uint64_t{1});
  t.single("ready", "gauge", "1 while castgate takes and records new sessions (GET /readyz).",
           uint64_t{g.ready});
  t.single("draining", "gauge", "1 after a stop signal, while live sessions finish.",
           uint64_t{g.draining});
  t.single("signer_up", "gauge", "1 while the signer process (keys) runs.", uint64_t{g.signer_up});
  t.family("worker_processes", "gauge", "Worker processes running, of those configured.");
  t.sample("worker_processes", label("state", "running"), g.workers_running);
  t.sample("worker_processes", label("state", "configured"), g.workers_configured);
  t.sample("worker_processes", label("state", "retiring"), g.workers_retiring);
  t.single("worker_restarts_total", "counter", "Worker processes that ended unexpectedly.",
           g.worker_restarts);
  t.family("config_reloads_total", "counter",
           "Configuration reloads (SIGHUP or a changed file), by outcome.");
  t.sample("config_reloads_total", label("outcome", "success"), g.reloads_ok);
  t.sample("config_reloads_total", label("outcome", "failure"), g.reloads_failed);
  t.single(
      "config_last_reload_successful", "gauge",
      "0 when the last reload was refused: the configuration in force is older than its files.",
      uint64_t{g.last_reload_ok});

  t.single("connections_total", "counter", "SSH connections accepted by a worker.",
           at(Metric::kConnections));
  t.family("connections_refused_total", "counter",
           "SSH connections refused before sign-in by admission control, by reason.");
  for (size_t i = 0; i < kAdmissionRefusals.size(); ++i)
    t.sample("connections_refused_total", label("reason", kAdmissionRefusals[i]), g.refused[i]);
  t.single("sessions_active", "gauge", "Connections being served now.", g.live_sessions);
  t.single("sessions_total", "counter", "Sessions started (signed in and routed to a target).",
           at(Metric::kSessions));

  t.family("sign_ins_total", "counter", "Sign-in attempts by method and outcome.");
  for (size_t m = 0; m < kSignInMethods.size(); ++m)
    for (int failed = 0; failed < 2; ++failed)
      t.sample("sign_ins_total",
               label("method", kSignInMethods[m]) + "," +
                   label("outcome", failed ? "failure" : "success"),
               at(Metric::kSignIns + (m * 2 + static_cast<size_t>(failed))));
  t.family("sign_in_duration_seconds", "histogram",
           "From the connection's start to a successful sign-in (a device sign-in includes the "
           "person's approval).");
  for (size_t b = 0; b < kSignInBuckets.size(); ++b) {
    std::string le = seconds(kSignInBuckets[b]);
    while (le.back() == '0') le.pop_back();
    if (le.back() == '.') le.pop_back();
    t.sample("sign_in_duration_seconds_bucket", label("le", le), at(Metric::kSignInBucket + b));
  }
  uint64_t count = at(Metric::kSignInBucket + kSignInBuckets.size());
  t.sample("sign_in_duration_seconds_bucket", label("le", "+Inf"), count);
  t.sample("sign_in_duration_seconds_sum", "",
           seconds(static_cast<double>(at(Metric::kSignInMicros)) / 1e6));
  t.sample("sign_in_duration_seconds_count", "", count);

  t.family("policy_refusals_total", "counter", "Requests refused by policy, by reason.");
  for (size_t r = 0; r < kRefusalReasons.size(); ++r)
    t.sample("policy_refusals_total", label("reason", kRefusalReasons[r]),
             at(Metric::kRefusals + r));
  t.single("upstream_failures_total", "counter",
           "Connections to a target that failed (connect, host key, sign-in).",
           at(Metric::kUpstreamFailures));
  t.single("alerts_total", "counter", "Alert events (alert rules matched).", at(Metric::kAlerts));
  t.single("limits_exceeded_total", "counter", "Connections closed for exceeding a limit.",
           at(Metric::kLimitsExceeded));
  t.family("relayed_bytes_total", "counter",
           "Bytes relayed between users and targets, added when each session ends.");
  t.sample("relayed_bytes_total", label("direction", "to_target"), at(Metric::kBytesToTarget));
  t.sample("relayed_bytes_total", label("direction", "to_user"), at(Metric::kBytesToUser));

  t.single("recorded_lines_total", "counter", "Event lines written whole to stdout.",
           at(Metric::kRecordedLines));
  t.single("recorded_bytes_total", "counter", "Bytes of event lines written to stdout.",
           at(Metric::kRecordedBytes));
  t.single("recording_lost_lines_total", "counter",
           "Event lines that could not be written (stdout failed).", at(Metric::kLostLines));
  t.single("recording_backlog_bytes", "gauge", "Event lines queued for stdout.",
           at(Metric::kBacklogBytes));
  t.single("recording_backpressure_total", "counter",
           "Times the stdout queue was full and sessions paused reading from their peers.",
           at(Metric::kBackpressure));
  return t.take();
}

}  // namespace castgate
