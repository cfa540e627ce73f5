// An event-loop thread serving many sessions. Connections are handed over by the acceptor and
// stay on one worker for life, so a session is only ever touched by one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "asciicast/session_log.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/ssh_handles.h"

namespace castgate {

class Session;

class Worker {
 public:
  Worker(GatewayContext& context, int index);
  ~Worker();

  void start();
  void stop_and_join();

  // Thread-safe: the worker takes over an accepted socket.
  void adopt(int fd, ListenSpec listener, asciicast::Endpoint peer);
  // Thread-safe: close every session with `message` (grace period over, or recording failed).
  void close_all(const std::string& reason, const std::string& message);
  // Thread-safe: sessions paused by recording backpressure may continue.
  void resume_all();
  size_t live_sessions() const { return live_.load(); }

  // Loop thread only.
  EventLoop& loop() { return loop_; }
  GatewayContext& context() { return context_; }
  ssh_bind bind() { return bind_.get(); }
  void session_finished(const std::string& id);
  Session* find(const std::string& id);
  // Builds the waker a session's recording backlog calls when it drains.
  std::function<void()> make_waker(const std::string& id);

 private:
  void tick();

  GatewayContext& context_;
  EventLoop loop_;
  ssh::Bind bind_;
  std::unordered_map<std::string, std::unique_ptr<Session>> sessions_;
  std::atomic<size_t> live_{0};
  std::thread thread_;
};

}  // namespace castgate
