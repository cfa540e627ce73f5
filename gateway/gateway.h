// The castgate process: loads keys and policy, listens, hands connections to workers, and shuts
// down gracefully on SIGTERM.
#pragma once

#include <array>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "asciicast/stdout_writer.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/health_endpoint.h"
#include "gateway/worker.h"

namespace castgate {

// Loads every file the configuration names; throws std::runtime_error naming what is wrong.
std::unique_ptr<GatewayContext> load_context(const GatewayConfig& config);

class Gateway : private FdHandler {
 public:
  explicit Gateway(std::unique_ptr<GatewayContext> context);
  ~Gateway() override;
  // Runs until shut down; returns the process exit code.
  int run();

 private:
  struct Listener {
    int fd = -1;
    ListenSpec spec;
  };
  void on_fd_ready(int fd, uint32_t events) override;
  void accept_on(const Listener& l);
  void on_signal();
  void begin_drain();
  void watchdog();
  void report_refusals();
  void write_ports_file();
  Worker& pick_worker();

  std::unique_ptr<GatewayContext> context_;
  std::unique_ptr<asciicast::StdoutWriter> writer_;
  EventLoop loop_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Listener> listeners_;
  std::unique_ptr<asciicast::SessionLog> gateway_log_;
  std::unique_ptr<HealthEndpoint> health_;
  int signal_fd_ = -1;
  bool draining_ = false;
  bool closing_all_ = false;
  enum class Refusal { kDraining, kFull, kEarlyDrop, kSourceFull };
  std::array<uint64_t, 4> refused_{};  // since the last report, by Refusal
  std::set<std::string> refused_sources_;
  std::chrono::steady_clock::time_point drain_deadline_{};
  asciicast::SinkHealth last_health_ = asciicast::SinkHealth::kHealthy;
};

}  // namespace castgate
