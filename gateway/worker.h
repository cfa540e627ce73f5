// An event-loop thread serving many sessions. Connections are handed over by the acceptor and
// stay on one worker for life, so a session is only ever touched by one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/locks.h"
#include "gateway/session_host.h"
#include "gateway/ssh_handles.h"

namespace castgate {

class Worker final : public SessionHost {
 public:
  Worker(GatewayContext& context, int index);
  ~Worker() override;

  void start();
  void stop_and_join();

  // Thread-safe: the worker takes over an accepted socket.
  void adopt(int fd, ListenSpec listener, asciicast::Endpoint peer);
  // Thread-safe: close every session with `message` (grace period over, or recording failed).
  void close_all(asciicast::EndReason reason, const std::string& message);
  // Thread-safe: sessions paused by recording backpressure may continue.
  void resume_all();
  // Thread-safe: ends the sessions `locks` now match.
  void enforce_locks(std::shared_ptr<const Locks> locks);
  void retire_all();  // Session::retire() on each of its sessions
  size_t live_sessions() const { return live_.load(); }

  // SessionHost
  EventLoop& loop() override { return loop_; }
  void run_in_session(const std::string& id, const std::function<void(Session&)>& fn) override;
  ssh_bind bind() override { return bind_.get(); }
  void session_finished(const std::string& id) override;
  std::string start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint peer,
                                  const JumpOrigin& origin) override;
  Session* find(const std::string& id) override;
  std::function<void()> make_waker(const std::string& id) override;

  // Loop thread only.
  GatewayContext& context() { return context_; }

 private:
  void tick();
  void add_session(std::string id, int fd, ListenSpec listener, asciicast::Endpoint peer,
                   std::optional<JumpOrigin> jump);

  GatewayContext& context_;
  EventLoop loop_;
  ssh::Bind bind_;
  std::unordered_map<std::string, std::unique_ptr<Session>> sessions_;
  std::atomic<size_t> live_{0};
  std::thread thread_;
};

}  // namespace castgate
