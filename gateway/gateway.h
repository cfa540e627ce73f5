// The castgate parent process: loads keys and policy, starts the signer, listens, admits
// connections (admission.h) and hands them to its worker processes (worker_process.h), which it
// starts, watches and replaces. It parses nothing a peer sends beyond the TCP handshake. When a
// worker dies it closes, with a signed last event, every record the worker left open, so the
// record says the gateway lost the session, not that its end was deleted. Shuts down gracefully
// on SIGTERM.
#pragma once

#include <array>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "asciicast/locked_stdout.h"
#include "asciicast/session_log.h"
#include "common/unique_fd.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/health_endpoint.h"
#include "gateway/metrics.h"
#include "gateway/rule_set.h"
#include "gateway/sandbox.h"
#include "gateway/supervisor_timing.h"

namespace castgate {

// Loads every file the configuration names; throws std::runtime_error naming what is wrong.
// Starts no thread (the parent forks its workers later).
std::unique_ptr<GatewayContext> load_context(const GatewayConfig& config);
// In a worker process: what starts threads (the resolver, the identity provider's client).
void start_worker_services(GatewayContext& context);
// What a worker reads besides the system's files (sandbox.h): the OIDC CA bundle.
sandbox::Options worker_readable(const GatewayContext& context);
// What the parent reads after it confines itself: the workers' files, and the directories of the
// configuration it reloads (rule_set.h) — except one that holds the signer's keys (those are the
// signer's alone; a file there is not reloaded, and a warning says so).
sandbox::Options parent_readable(const GatewayContext& context);
// The directories of the configuration that also hold the signer's keys (or are /): the parent
// may not read them again, so the configuration cannot be reloaded.
std::vector<std::string> rule_directories_with_keys(const GatewayContext& context);

class Gateway : private FdHandler {
 public:
  explicit Gateway(std::unique_ptr<GatewayContext> context);
  ~Gateway() override;
  // Runs until shut down; returns the process exit code.
  int run();

 private:
  struct Listener {
    UniqueFd fd;
    ListenSpec spec;
  };
  struct WorkerSlot {
    int index = 0;
    pid_t pid = 0;  // 0: not running
    UniqueFd channel;
    std::unique_ptr<SessionTable> table;
    std::unique_ptr<WorkerMetrics> metrics;
    std::map<std::string, int> startups;  // connections handed to it, not yet signed in
    RestartBackoff restarts;     // deaths soon after a start, in a row: the restart is delayed
    StuckChannel stuck;          // its channel full: stopped when it stays so
    std::string prefix;          // of the chain ids of the running worker (fresh for each)
    std::string chain;           // the running worker's own chain
    bool chain_started = false;  // the worker said its chain has its first line
    uint64_t handed = 0;         // connections handed to the running worker
    size_t metrics_index = 0;    // its place in metric_totals_
    // Retiring (after a reload): it serves its connections under the rules they started with,
    // gets no new ones and is not restarted; told so over its channel (kRetire) once.
    bool retiring = false;
    bool told_to_retire = false;
    bool told_to_drain = false;  // retiring, and past the limit: its sessions end (SIGTERM)
    // Serving with an earlier configuration: its successor could not start (retried).
    bool stale = false;
  };
  void on_fd_ready(int fd, uint32_t events) override;
  void accept_on(size_t listener);
  void on_signal();
  void on_channel(WorkerSlot& w);
  void reap_workers();
  void worker_ended(WorkerSlot& w, int status);
  // `open`: the chains the dead worker's table lists (read once, by worker_ended).
  void close_lost_records(WorkerSlot& w, const std::vector<SessionTable::OpenChain>& open,
                          const std::string& how, const nlohmann::json& lost);
  void spawn(WorkerSlot& w);
  std::string readiness() const;  // empty when ready, else why not (GET /readyz)
  // GET /metrics; `ready` and `signer_up` as publish_health found them a moment before.
  std::string metrics_text(bool ready, bool signer_up);
  void schedule_spawn(WorkerSlot& w, std::chrono::milliseconds delay);
  void try_spawn(WorkerSlot& w);  // spawn(), or again in 2 s if that failed
  void begin_drain();
  // Reads the configuration again (SIGHUP, or one of its files changed): a valid new one is put
  // in force and each worker process is replaced by one serving with it, the old ones retiring;
  // an invalid one is refused and the one in force stays.
  void reload(const char* trigger);
  // Starts a successor for `w` and retires `w` (false, and `w` stays, if the start failed).
  bool replace_worker(WorkerSlot& w);
  void limit_retiring();
  void tell_retiring();
  // Every worker process, serving or retiring.
  template <typename Fn>
  void for_each_process(Fn fn) {
    for (auto& w : workers_) fn(w);
    for (auto& w : retiring_) fn(w);
  }
  void watchdog();
  void report_refusals();
  // A signed checkpoint of the worker processes' chains into the parent's chain (checkpoint.h).
  void checkpoint(bool last);
  void write_ports_file();
  WorkerSlot* pick_worker(const std::string& ip);
  size_t live_sessions() const;

  std::unique_ptr<GatewayContext> context_;
  std::unique_ptr<asciicast::LockedStdout> out_;
  EventLoop loop_;
  std::vector<Listener> listeners_;
  std::vector<WorkerSlot> workers_;
  std::list<WorkerSlot> retiring_;  // replaced after a reload, still serving their connections
  // Reloads: the files in force as last looked at (a failed reload is not retried until one of
  // them changes again), and the outcomes.
  std::vector<RuleFile> watched_rules_;
  Periodic rules_look_due_{std::chrono::seconds(1)};
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  std::string reload_blocked_;  // why no reload can work (the configuration beside the keys)
  bool last_reload_ok_ = true;
  std::unique_ptr<asciicast::SessionLog> gateway_log_;
  asciicast::CheckpointLedger ledger_;  // the worker processes' chains
  uint64_t checkpoints_ = 0;
  Periodic checkpoint_due_;  // every --checkpoint-interval
  // The health port runs on a thread of its own, so that probes are answered while the main
  // loop waits on a full stdout (its own lines, or the signer's it waits for): the main loop
  // publishes what they say (publish_health, every watchdog pass) and its heartbeat.
  struct HealthView {
    std::string ready;  // empty when ready, else why not
    bool signer_gone = false;
    std::string metrics;
    SteadyTime beat{};  // the context's clock
  };
  void publish_health();
  std::string probe(HealthRoute route);  // health thread
  std::mutex health_mu_;
  HealthView health_view_;  // under health_mu_
  EventLoop health_loop_;
  std::thread health_thread_;
  std::unique_ptr<HealthEndpoint> health_;
  UniqueFd signal_fd_;
  bool draining_ = false;
  bool closing_all_ = false;
  int exit_code_ = 0;
  enum class Refusal { kDraining, kFull, kEarlyDrop, kSourceFull, kNoWorker };
  std::array<uint64_t, 5> refused_{};        // since the last report, by Refusal
  std::array<uint64_t, 5> refused_total_{};  // since the start, by Refusal (metrics)
  MetricTotals metric_totals_;               // the workers' counts, as /metrics serves them
  uint64_t worker_restarts_ = 0;
  std::set<std::string> refused_sources_;
  DrainDeadline drain_deadline_;
  std::string packet_;
};

}  // namespace castgate
