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

#include "asciicast/session_log.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/locks.h"
#include "gateway/ssh_handles.h"

namespace castgate {

class Session;
class Worker;
struct JumpOrigin;

// A session named by the worker that owns it and its id (Envoy's handle of (dispatcher, id)):
// safe to copy to another thread, and harmless once the session is gone. Code on other threads
// (the identity provider's, the resolver's) reaches a session only through this, never through
// a pointer that may outlive it.
struct SessionRef {
  Worker* worker = nullptr;
  std::string id;
  // Thread-safe: runs `fn` on the session's loop, inside its fault boundary, if it still exists.
  void post(std::function<void(Session&)> fn) const;
};

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
  // Thread-safe: ends the sessions `locks` now match.
  void enforce_locks(std::shared_ptr<const Locks> locks);
  void retire_all();  // Session::retire() on each of its sessions
  size_t live_sessions() const { return live_.load(); }

  // Loop thread only.
  EventLoop& loop() { return loop_; }
  GatewayContext& context() { return context_; }
  ssh_bind bind() { return bind_.get(); }
  void session_finished(const std::string& id);
  // Starts the inner session of a ProxyJump channel on this loop (after the current pass) on
  // its end of a socketpair; returns its id.
  std::string start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint peer,
                                  const JumpOrigin& origin);
  Session* find(const std::string& id);
  // Runs `fn` on the session `id` if it exists, inside its fault boundary: an exception ends that
  // session (with its last event), never the worker.
  void run_in_session(const std::string& id, const std::function<void(Session&)>& fn);
  // Builds the waker a session's recording backlog calls when it drains.
  std::function<void()> make_waker(const std::string& id);

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
