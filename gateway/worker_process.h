// A castgate worker process: forked by the parent (gateway.h), it serves the connections the
// parent hands it over its channel (worker_channel.h) on its event-loop threads (worker.h),
// records them through its own stdout writer, and asks the signer for certificates and signatures
// over its own connection. It holds no CA or recording key, runs sandboxed (sandbox.h), and a
// fault in it costs only its own sessions: the parent closes their records and starts another.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "asciicast/stdout_writer.h"
#include "common/unique_fd.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/lock_watcher.h"
#include "gateway/metrics.h"
#include "gateway/worker.h"

namespace castgate {

struct WorkerProcessSetup {
  int index = 0;     // its place among the parent's workers
  int channel = -1;  // its end of the parent's channel
  int signer = -1;   // its connection to the signer
  SessionTable* table = nullptr;
  WorkerMetrics* metrics = nullptr;   // what it counts, read by the parent (/metrics)
  std::string session_prefix;         // every chain id it makes starts with it (or worker-PREFIX)
  std::string chain;                  // its own chain's id, "worker-PREFIX...", named by the parent
  std::vector<ListenSpec> listeners;  // by the index the parent's kAdopt names
  std::vector<int> keep_fds;          // besides the standard streams, channel and signer
};

// The child's whole life after fork(): enters the sandbox, starts its threads, serves until the
// parent tells it to stop (SIGTERM) and its sessions are over, and exits. Never returns.
[[noreturn]] void run_worker_process(GatewayContext& context, WorkerProcessSetup setup);

class WorkerProcess : private FdHandler {
 public:
  WorkerProcess(GatewayContext& context, WorkerProcessSetup setup, std::string sandbox_note);
  ~WorkerProcess() override;
  int run();

 private:
  void on_fd_ready(int fd, uint32_t events) override;
  void on_signal();
  void on_channel();
  void begin_drain();
  // The parent reloaded the configuration and started this worker's successor (kRetire).
  void retire();
  void watchdog();
  // A signed checkpoint of its sessions' chains into its own chain (checkpoint.h).
  void checkpoint(bool last);
  Worker& pick_worker();

  GatewayContext& context_;
  WorkerProcessSetup setup_;
  std::string sandbox_note_;
  std::unique_ptr<asciicast::StdoutWriter> writer_;
  MetricsRecorder metrics_recorder_;           // its sessions' events, counted into setup_.metrics
  std::unique_ptr<LockWatcher> lock_watcher_;  // --locks: polled by the watchdog
  EventLoop loop_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<asciicast::SessionLog> log_;  // the process's own chain: "worker-..."
  asciicast::CheckpointLedger ledger_;          // its sessions' chains
  uint64_t checkpoints_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_{};
  UniqueFd signal_fd_;
  bool draining_ = false;
  bool retiring_ = false;  // ends after its last connection, with no deadline
  // How its sessions end when it drains: a stop, or a retired worker past the parent's limit.
  asciicast::EndReason end_reason_ = asciicast::EndReason::kGatewayShutdown;
  std::string end_message_ = "castgate is shutting down; the session was closed";
  bool closing_all_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  asciicast::SinkHealth last_health_ = asciicast::SinkHealth::kHealthy;
  std::string packet_;
};

}  // namespace castgate
