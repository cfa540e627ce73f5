// What a session needs from the worker that runs it (Worker implements SessionHost), and how code
// on other threads names a session. A session sees its host through this and nothing more.
#pragma once

#include <functional>
#include <string>

#include "asciicast/session_log.h"
#include "gateway/config.h"
#include "gateway/event_loop.h"
#include "gateway/ssh_handles.h"

namespace castgate {

class Session;
struct JumpOrigin;

class SessionHost {
 public:
  virtual ~SessionHost() = default;

  // Thread-safe: runs `fn` on the session `id`'s loop, inside its fault boundary, if it still
  // exists.
  virtual void post_to_session(const std::string& id, std::function<void(Session&)> fn) = 0;

  // Loop thread only.
  virtual EventLoop& loop() = 0;
  virtual ssh_bind bind() = 0;
  // The session `id` has ended: it is dropped after the current pass.
  virtual void session_finished(const std::string& id) = 0;
  // Starts the inner session of a ProxyJump channel on this loop (after the current pass) on
  // its end of a socketpair; returns its id.
  virtual std::string start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint peer,
                                          const JumpOrigin& origin) = 0;
  virtual Session* find(const std::string& id) = 0;
  // Builds the waker a session's recording backlog calls when it drains.
  virtual std::function<void()> make_waker(const std::string& id) = 0;
};

// A session named by the host that owns it and its id (Envoy's handle of (dispatcher, id)):
// safe to copy to another thread, and harmless once the session is gone. Code on other threads
// (the identity provider's, the resolver's) reaches a session only through this, never through
// a pointer that may outlive it.
struct SessionRef {
  SessionHost* host = nullptr;
  std::string id;
  // Thread-safe: runs `fn` on the session's loop, inside its fault boundary, if it still exists.
  void post(std::function<void(Session&)> fn) const { host->post_to_session(id, std::move(fn)); }
};

}  // namespace castgate
