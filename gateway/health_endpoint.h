// A tiny HTTP endpoint for orchestrators (Kubernetes probes), apart from the SSH port so that
// probes do not show up as connections in the audit stream: "GET /healthz" answers 200 while
// castgate can record, 503 when its recording output is stalled or broken or it is draining.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "gateway/event_loop.h"

namespace castgate {

class HealthEndpoint final : public FdHandler {
 public:
  // `status` returns an empty string when healthy, else the reason.
  HealthEndpoint(EventLoop& loop, const std::string& address, int port,
                 std::function<std::string()> status);
  ~HealthEndpoint() override;
  int port() const { return port_; }
  void on_fd_ready(int fd, uint32_t events) noexcept override;

 private:
  struct Client {
    std::string request;
    EventLoop::TimerId timer = 0;
  };
  void accept_all();
  void drop(int fd);

  EventLoop& loop_;
  std::function<std::string()> status_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::map<int, Client> clients_;
};

}  // namespace castgate
