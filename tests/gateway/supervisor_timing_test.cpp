// The parent's timing decisions about its worker processes (supervisor_timing.h), on a manual
// clock: the restart backoff, the stuck channel, periodic work, the drain deadline and the
// health probes' reading of the main loop's heartbeat.
#include "gateway/supervisor_timing.h"

#include <doctest/doctest.h>

#include <vector>

#include "common/clock.h"

using namespace castgate;
using namespace std::chrono_literals;

namespace {

struct TimelineStep {
  std::chrono::milliseconds later;  // the clock advanced by this much, then
  bool expected;                    // what the decision says
};

// Walks `clock` through `steps`, asking `decision` at each.
template <typename Decision>
void check_timeline(ManualClock& clock, Decision decision, const std::vector<TimelineStep>& steps) {
  for (const auto& step : steps) {
    clock.advance(step.later);
    CAPTURE(clock.steady_now().time_since_epoch().count());
    CHECK(decision(clock.steady_now()) == step.expected);
  }
}

}  // namespace

TEST_CASE("restart backoff: quick deaths in a row wait longer, up to 10 s") {
  ManualClock clock;
  clock.advance(1h);
  RestartBackoff backoff;
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 7; ++i) {
    backoff.started(clock.steady_now());
    clock.advance(9999ms);  // just short of kQuickDeath
    delays.push_back(backoff.died(clock.steady_now()));
    clock.advance(delays.back());
  }
  CHECK(delays == std::vector<std::chrono::milliseconds>{1000ms, 2000ms, 4000ms, 8000ms, 10000ms,
                                                         10000ms, 10000ms});
  CHECK(backoff.quick_deaths() == 7);
}

TEST_CASE("restart backoff: a worker that lived 10 s starts over at once") {
  ManualClock clock;
  RestartBackoff backoff;
  for (int i = 0; i < 3; ++i) {
    backoff.started(clock.steady_now());
    clock.advance(1s);
    backoff.died(clock.steady_now());
  }
  CHECK(backoff.quick_deaths() == 3);
  backoff.started(clock.steady_now());
  clock.advance(10s);  // exactly kQuickDeath: not quick
  CHECK(backoff.died(clock.steady_now()) == 0ms);
  CHECK(backoff.quick_deaths() == 0);
  backoff.started(clock.steady_now());
  clock.advance(2s);
  CHECK(backoff.died(clock.steady_now()) == 1000ms);  // the count started over
}

TEST_CASE("restart backoff: a successor keeps its predecessor's count (a reload's)") {
  ManualClock clock;
  RestartBackoff backoff;
  backoff.started(clock.steady_now());
  clock.advance(1s);
  backoff.died(clock.steady_now());
  RestartBackoff successor = backoff;
  successor.started(clock.steady_now());
  clock.advance(1s);
  CHECK(successor.died(clock.steady_now()) == 2000ms);
}

TEST_CASE("stuck channel: stopped only after it stayed full past 10 s") {
  ManualClock clock;
  StuckChannel stuck;
  auto full = [&stuck](SteadyTime now) { return stuck.full(now); };
  // Full since the clock's first instant; exactly the limit is not past it.
  check_timeline(clock, full, {{0ms, false}, {5s, false}, {5s, false}, {1ms, true}});
  stuck.cleared();  // it took a message: the count starts over
  check_timeline(clock, full, {{1s, false}, {10s, false}, {1s, true}});
}

TEST_CASE("periodic work: due at first, then once a period") {
  ManualClock clock;
  Periodic look(1s);
  auto due = [&look](SteadyTime now) { return look.due(now); };
  check_timeline(clock, due, {{0ms, true}});  // never done, even at the clock's first instant
  look.done(clock.steady_now());
  check_timeline(clock, due, {{999ms, false}, {1ms, true}, {0ms, true}});  // due until done
  look.done(clock.steady_now());
  check_timeline(clock, due, {{0ms, false}, {1h, true}});
}

TEST_CASE("drain deadline: workers get the grace period and 20 s more") {
  ManualClock clock;
  DrainDeadline drain;
  auto overrun = [&drain](SteadyTime now) { return drain.overrun(now); };
  check_timeline(clock, overrun, {{1h, false}});  // no stop yet
  drain.begin(clock.steady_now(), 30s);
  check_timeline(clock, overrun, {{49s, false}, {999ms, false}, {1ms, true}});
}

TEST_CASE("heartbeat: readiness fails 2 s after the last beat, liveness after 60 s") {
  ManualClock clock;
  auto beat = clock.steady_now();
  HeartbeatView view;
  view.ready = "";
  auto at = [&](std::chrono::milliseconds later) {
    clock.advance(later);
    view.silent = clock.steady_now() - beat;
  };
  at(2000ms);
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) == "");
  at(1ms);
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) ==
        "castgate's main loop is not running");
  view.output_stalled = true;
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) == "recording output stalled");
  view.output_stalled = false;
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) == "");
  at(57999ms);  // 60 s and 0 ms
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) == "");
  at(1001ms);
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) ==
        "castgate's main loop has not run for 61s");
  view.output_stalled = true;  // a stalled log shipper is not cured by a restart
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) == "");
}

TEST_CASE("heartbeat: a beating loop answers its readiness; a gone signer fails both") {
  HeartbeatView view;
  view.silent = 200ms;
  view.ready = "draining";
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) == "draining");
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) == "");
  view.past_stall_limit = true;
  view.output_stalled = true;
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) == "recording output stalled");
  view.signer_gone = true;
  CHECK(HeartbeatVerdict::answer(HealthRoute::kReady, view) == "the signer process is gone");
  CHECK(HeartbeatVerdict::answer(HealthRoute::kLive, view) == "the signer process is gone");
}
