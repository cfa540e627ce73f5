// Completeness across sessions: the signed checkpoints castgate's processes write, and what
// castgate-player verify concludes from them.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "asciicast/checkpoint.h"
#include "asciicast/record_signer.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "player/verify.h"
#include "tests/asciicast/memory_sink.h"
#include "tests/player/recorded_session.h"

namespace castgate::player {
namespace {

using asciicast::CheckpointLedger;
using asciicast::EventKind;
using asciicast::SessionLog;
using asciicast::SessionLogOptions;
using nlohmann::json;
using std::chrono::seconds;

// A worker process's chain and its sessions' chains, on one manual clock, into one sink.
struct Gateway {
  Ed25519PrivateKey key = Ed25519PrivateKey::generate();
  asciicast::LocalRecordSigner signer{key};
  ManualClock clock{std::chrono::system_clock::time_point(seconds(1795000000))};
  asciicast::testing::MemorySink sink;
  CheckpointLedger ledger;
  uint64_t number = 0;

  SessionLogOptions options(bool covered, size_t max_line = 8192) {
    SessionLogOptions o;
    o.instance = "gw-test";
    o.max_line = max_line;
    o.signing_key = &signer;
    o.ledger = covered ? &ledger : nullptr;
    return o;
  }
  std::unique_ptr<SessionLog> chain(const std::string& id, bool covered = true) {
    return std::make_unique<SessionLog>(options(covered), id, asciicast::Endpoint{"192.0.2.7", 1},
                                        sink, std::make_shared<asciicast::Backlog>(SIZE_MAX),
                                        clock);
  }
  void connection(SessionLog& log) { log.emit(EventKind{"connection.accepted", "", ""}); }
  void close(SessionLog& log) {
    log.end(EventKind{"connection.closed", "", "closed"}, json::object());
  }
  void checkpoint(SessionLog& worker, bool last = false) {
    clock.advance(seconds(1));
    asciicast::write_checkpoint(worker, ++number, seconds(1), ledger.take(), last);
  }
  std::vector<SessionVerdict> verify(const std::vector<std::string>& lines) {
    testing::StoredLog log(lines);
    Verifier verifier({testing::recording_key_of(key)}, VerifyOptions{});
    verifier.add_file(log.file());
    return verifier.finish();
  }
};

const SessionVerdict& find(const std::vector<SessionVerdict>& verdicts, const std::string& id) {
  auto at = std::find_if(verdicts.begin(), verdicts.end(),
                         [&](const SessionVerdict& v) { return v.session == id; });
  REQUIRE(at != verdicts.end());
  return *at;
}

bool mentions(const SessionVerdict& v, const std::string& text) {
  for (const auto& p : v.problems)
    if (p.find(text) != std::string::npos) return true;
  return false;
}

std::vector<std::string> without(std::vector<std::string> lines,
                                 const std::function<bool(const json&)>& drop) {
  std::erase_if(lines, [&](const std::string& l) { return drop(json::parse(l)); });
  return lines;
}

bool of(const json& j, const std::string& session) {
  return j["castgate"]["session"] == session;
}
bool is_checkpoint(const json& j, uint64_t number) {
  return j["castgate"].contains("checkpoint") && j["castgate"]["checkpoint"]["number"] == number;
}

}  // namespace

TEST_CASE("checkpoints tell a deleted session, a removed checkpoint, open from truncated") {
  Gateway gw;
  auto worker = gw.chain("worker-abc", false);
  gw.connection(*worker);
  auto a = gw.chain("sess-a");
  gw.connection(*a);
  gw.close(*a);
  auto b = gw.chain("sess-b");
  gw.connection(*b);  // still open
  gw.checkpoint(*worker);
  gw.checkpoint(*worker);
  const auto lines = gw.sink.lines;

  SUBCASE("untouched: the ended session is OK, the open ones OPEN, nothing fails") {
    auto verdicts = gw.verify(lines);
    CHECK(verdicts.size() == 3);
    CHECK(find(verdicts, "sess-a").ok);
    CHECK(find(verdicts, "sess-b").open);
    CHECK(find(verdicts, "sess-b").problems.empty());
    CHECK(find(verdicts, "worker-abc").open);
    CHECK(verify_exit_status(verdicts, false) == kVerifyExitOk);
    CHECK(verdict_word(find(verdicts, "sess-b")) == "OPEN");
  }
  SUBCASE("a session deleted whole is reported by name") {
    auto verdicts = gw.verify(without(lines, [](const json& j) { return of(j, "sess-a"); }));
    const auto& a_verdict = find(verdicts, "sess-a");
    CHECK(!a_verdict.ok);
    CHECK(mentions(a_verdict, "no event of it is in the store"));
    CHECK(verify_exit_status(verdicts, false) == kVerifyExitFailed);
  }
  SUBCASE("a session whose end was deleted is truncated, not open") {
    auto verdicts = gw.verify(
        without(lines, [](const json& j) { return of(j, "sess-a") && j["castgate"]["seq"] == 1; }));
    CHECK(mentions(find(verdicts, "sess-a"), "says it ended: the record was truncated"));
  }
  SUBCASE("a removed checkpoint is named, besides the gap in its chain") {
    auto verdicts = gw.verify(without(lines, [](const json& j) { return is_checkpoint(j, 1); }));
    const auto& w = find(verdicts, "worker-abc");
    CHECK(mentions(w, "checkpoint 1 is missing"));
    CHECK(mentions(w, "are missing"));
    CHECK(!w.open);
  }
  SUBCASE("an altered checkpoint does not count and is reported") {
    auto edited = lines;
    for (auto& l : edited)
      if (l.find("\"checkpoint\":{") != std::string::npos) {
        auto at = l.find("sess-b");
        if (at != std::string::npos) l.replace(at, 6, "sess-x");
      }
    auto verdicts = gw.verify(edited);
    CHECK(mentions(find(verdicts, "worker-abc"), "signature does not verify"));
    CHECK(std::none_of(verdicts.begin(), verdicts.end(),
                       [](const SessionVerdict& v) { return v.session == "sess-x"; }));
  }
  SUBCASE("checkpoints that stop while the instance wrote on: truncated, not open") {
    // The parent's chain of the same instance, a minute later: the worker's checkpoints (and
    // sess-b's end) are missing from the store.
    auto parent = gw.chain("gateway-1", false);
    gw.clock.advance(seconds(60));
    gw.connection(*parent);
    auto stored = lines;
    stored.insert(stored.end(), gw.sink.lines.begin() + static_cast<long>(lines.size()),
                  gw.sink.lines.end());
    auto verdicts = gw.verify(stored);
    const auto& b_verdict = find(verdicts, "sess-b");
    CHECK(!b_verdict.open);
    CHECK(mentions(b_verdict, "the store holds later lines of its instance"));
    CHECK(mentions(find(verdicts, "worker-abc"), "truncated"));
  }
}

TEST_CASE("a session ended after the last checkpoint that names it open is OK") {
  Gateway gw;
  auto worker = gw.chain("worker-abc", false);
  gw.connection(*worker);
  auto a = gw.chain("sess-a");
  gw.connection(*a);
  gw.checkpoint(*worker);
  gw.close(*a);
  gw.checkpoint(*worker, true);
  gw.close(*worker);
  auto verdicts = gw.verify(gw.sink.lines);
  for (const auto& v : verdicts) CHECK_MESSAGE(v.ok, v.session);
}

TEST_CASE("a long list of open sessions is written in signed parts within the line limit") {
  Gateway gw;
  auto worker = gw.chain("worker-abc", false);
  gw.connection(*worker);
  std::vector<std::unique_ptr<SessionLog>> open;
  for (int i = 0; i < 400; ++i) {
    open.push_back(gw.chain("sess-" + std::to_string(1000000 + i) + "-abcdefabcdef"));
    gw.connection(*open.back());
  }
  gw.checkpoint(*worker);
  size_t parts = 0;
  for (const auto& l : gw.sink.lines) {
    CHECK(l.size() <= 8192);
    if (l.find("\"checkpoint\":{") == std::string::npos) continue;
    ++parts;
    auto j = json::parse(l);
    CHECK(j["castgate"].contains("sig"));
    CHECK(j["castgate"]["checkpoint"]["counts"]["open"] == 400);
  }
  CHECK(parts > 1);
  auto verdicts = gw.verify(gw.sink.lines);
  CHECK(std::all_of(verdicts.begin(), verdicts.end(),
                    [](const SessionVerdict& v) { return v.open && v.problems.empty(); }));
  // One part less: the parts' sessions are not said to be open any more.
  auto fewer = without(gw.sink.lines, [](const json& j) {
    return j["castgate"].contains("checkpoint") &&
           j["castgate"]["checkpoint"]["part"]["index"] == 1;
  });
  auto partial = gw.verify(fewer);
  CHECK(mentions(find(partial, "worker-abc"), "parts of checkpoint 1 are missing"));
}

TEST_CASE("the ledger lists what started and ended since the last take, and what is open") {
  CheckpointLedger ledger;
  ledger.started("a");
  ledger.started("b");
  ledger.ended("a");
  ledger.ended("zzz");  // never started here: not counted
  auto p = ledger.take();
  CHECK(p.started == std::vector<std::string>{"a", "b"});
  CHECK(p.ended == std::vector<std::string>{"a"});
  CHECK(p.open == std::vector<std::string>{"b"});
  CHECK(p.total_ended == 1);
  auto q = ledger.take();
  CHECK(q.started.empty());
  CHECK(q.open == std::vector<std::string>{"b"});
  CHECK(q.total_started == 2);
  CHECK(asciicast::checkpoint_digest(p) != asciicast::checkpoint_digest(q));
}

}  // namespace castgate::player
