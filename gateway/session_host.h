// What a session needs from the worker that runs it (Worker implements SessionHost), and how code
// that runs later, or on other threads, reaches a session.
//
// The rule (STYLE.md 14): every callback that may run after the code that scheduled it returns
// (a task posted from another thread, work deferred to the end of the pass, a timer, a
// resolver's or an identity provider's answer) names its session by a SessionRef (worker and
// session id), never by a pointer, and finds the session again by id when it runs. A session that
// has ended (closed, or dropped by its worker) is not found, and the callback does nothing. So no
// such callback captures `this` of a session or of anything it owns (its upstream connection, its
// sign-in at the prompt); a part of a session is reached through the session (SessionPartRef).
// Cancelling a timer when it is no longer wanted is tidiness, not what keeps it safe.
//
// Registrations by pointer are only for what calls back while its owner is being served, never
// later: a descriptor the loop watches for an FdHandler, and libssh's channel callbacks (run inside
// the session's own polling). Whoever registers one removes it in its destructor.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>

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

  // The loop the host's sessions run on. Any thread may post() to it; everything else about it
  // is the loop thread's.
  virtual EventLoop& loop() = 0;
  // Loop thread only: runs `fn` on the session `id` inside its fault boundary, if the session
  // exists and has not closed; otherwise does nothing.
  virtual void run_in_session(const std::string& id, const std::function<void(Session&)>& fn) = 0;

  // Loop thread only.
  virtual ssh_bind bind() = 0;
  // The session `id` has ended: it is dropped after the current pass.
  virtual void session_finished(const std::string& id) = 0;
  // Starts the inner session of a ProxyJump channel on this loop (after the current pass) on
  // its end of a socketpair, which the host owns from the call on; returns its id.
  virtual std::string start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint peer,
                                          const JumpOrigin& origin) = 0;
  virtual Session* find(const std::string& id) = 0;
  // Builds the waker a session's recording backlog calls when it drains.
  virtual std::function<void()> make_waker(const std::string& id) = 0;
};

// A session named by the host that owns it and its id (Envoy's handle of (dispatcher, id)): safe
// to copy to another thread, and harmless once the session is gone. The three ways to run `fn`
// later differ only in when; each finds the session by id when it runs (see the rule above).
struct SessionRef {
  SessionHost* host = nullptr;
  std::string id;

  // Thread-safe: on the session's loop, soon.
  void post(std::function<void(Session&)> fn) const { host->loop().post(task(std::move(fn))); }
  // Loop thread only: after the current pass's callbacks.
  void defer(std::function<void(Session&)> fn) const { host->loop().defer(task(std::move(fn))); }
  // Loop thread only: once `delay` has passed, unless cancelled.
  EventLoop::TimerId after(std::chrono::milliseconds delay,
                           std::function<void(Session&)> fn) const {
    return host->loop().add_timer(delay, task(std::move(fn)));
  }
  void cancel(EventLoop::TimerId timer) const { host->loop().cancel_timer(timer); }

 private:
  std::function<void()> task(std::function<void(Session&)> fn) const {
    return [host = host, id = id, fn = std::move(fn)] { host->run_in_session(id, fn); };
  }
};

// A part of a session (its upstream connection, its sign-in at the prompt), named through the
// session: `enter` is the session's code that runs a task on the part if the session still has
// it, and does what the session must after it. Scheduling is SessionRef's.
template <class Part>
struct SessionPartRef {
  using Task = std::function<void(Part&)>;
  SessionRef session;
  void (*enter)(Session&, const Task&) = nullptr;

  void post(Task fn) const { session.post(in_part(std::move(fn))); }
  void defer(Task fn) const { session.defer(in_part(std::move(fn))); }
  EventLoop::TimerId after(std::chrono::milliseconds delay, Task fn) const {
    return session.after(delay, in_part(std::move(fn)));
  }
  void cancel(EventLoop::TimerId timer) const { session.cancel(timer); }

 private:
  std::function<void(Session&)> in_part(Task fn) const {
    return [enter = enter, fn = std::move(fn)](Session& s) { enter(s, fn); };
  }
};

}  // namespace castgate
