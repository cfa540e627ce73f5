// The parent process's timing decisions about its worker processes and its own loop: when a dead
// worker is started again, when a worker that does not read its channel is stopped, when periodic
// work is due, when a stop has taken too long, and what the health probes make of the main loop's
// heartbeat. Apart from the processes, and fed the time (Clock::steady_now()), so that they can be
// tested on a ManualClock. The event loop's timers that wake the parent up stay on real time, as
// every loop's do (Worker::tick): they only say when to look again, these say what to do then.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "gateway/health_endpoint.h"

namespace castgate {

using SteadyTime = std::chrono::steady_clock::time_point;

// A worker that dies right after it started will likely do so again: its next start waits, longer
// after each such death in a row (1 s, doubling, up to 10 s), instead of forking in a loop. A
// worker that lived kQuickDeath or longer is started again at once, and the count starts over.
class RestartBackoff {
 public:
  static constexpr std::chrono::seconds kQuickDeath{10};
  static constexpr std::chrono::milliseconds kMaxDelay{10000};
  void started(SteadyTime now) { started_ = now; }
  // The worker died at `now`: how long to wait before starting the next one.
  std::chrono::milliseconds died(SteadyTime now);
  int quick_deaths() const { return quick_deaths_; }

 private:
  SteadyTime started_{};
  int quick_deaths_ = 0;  // in a row
};

// A worker's channel found full: the worker is not reading it (stopped, or looping). One that
// stays full for longer than kLimit is not serving, and is stopped.
class StuckChannel {
 public:
  static constexpr std::chrono::seconds kLimit{10};
  void cleared() { since_.reset(); }  // the channel took a message
  // The channel was full at `now`: true when it has been full, without a message taken, for
  // longer than kLimit.
  bool full(SteadyTime now);

 private:
  std::optional<SteadyTime> since_;
};

// Work done every `period` at most (looking at the configuration's files, checkpoints): due when
// it never was done, or `period` after it last was.
class Periodic {
 public:
  explicit Periodic(std::chrono::steady_clock::duration period) : period_(period) {}
  bool due(SteadyTime now) const { return !last_ || now - *last_ >= period_; }
  void done(SteadyTime now) { last_ = now; }

 private:
  std::chrono::steady_clock::duration period_;
  std::optional<SteadyTime> last_;
};

// On a stop the workers close their sessions when the grace period is over; one still running
// kOverrun after that is stopped, and its records are closed for it.
class DrainDeadline {
 public:
  static constexpr std::chrono::seconds kOverrun{20};
  void begin(SteadyTime now, std::chrono::seconds grace) { deadline_ = now + grace; }
  bool overrun(SteadyTime now) const { return deadline_ && now >= *deadline_ + kOverrun; }

 private:
  std::optional<SteadyTime> deadline_;
};

// What the health thread knows when a probe comes (Gateway::probe).
struct HeartbeatView {
  std::chrono::steady_clock::duration silent{};  // since the main loop last published its view
  bool output_stalled = false;    // the output lock held for a while, and stdout takes nothing
  bool past_stall_limit = false;  // ... and for longer than --recording-stall-limit
  bool signer_gone = false;
  std::string ready;  // the main loop's readiness when it last published (empty: ready)
};

// A probe's answer: empty for 200, else why not. The main loop publishes a beat every watchdog
// pass (200 ms): readiness fails after kBeatLost without one, liveness only after kLoopStuck
// and only when a stalled stdout does not explain it (a restart would not cure a log shipper).
class HeartbeatVerdict {
 public:
  static constexpr std::chrono::seconds kBeatLost{2};
  static constexpr std::chrono::seconds kLoopStuck{60};
  static std::string answer(HealthRoute route, const HeartbeatView& view);
};

}  // namespace castgate
