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

const std::string kWorker = "worker-pfx12abcdefghij";  // its sessions' ids start with pfx12
const std::string kA = "pfx12-sess-a", kB = "pfx12-sess-b";

// A parent's chain, a worker process's chain and its sessions' chains, on one manual clock, into
// one sink.
struct Gateway {
  Ed25519PrivateKey key = Ed25519PrivateKey::generate();
  asciicast::LocalRecordSigner signer{key};
  ManualClock clock{std::chrono::system_clock::time_point(seconds(1795000000))};
  asciicast::testing::MemorySink sink;
  CheckpointLedger ledger;         // the worker process's: its sessions
  CheckpointLedger parent_ledger;  // the parent's: its worker processes' chains
  std::unique_ptr<SessionLog> parent;
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
  // The worker's chain, named by the parent's checkpoints.
  std::unique_ptr<SessionLog> worker() {
    parent = chain("gateway-parent", false);
    connection(*parent);
    auto w = chain(kWorker, false);
    connection(*w);
    parent_ledger.started(kWorker);
    return w;
  }
  void checkpoint(SessionLog& worker, bool last = false) {
    clock.advance(seconds(1));
    ++number;
    asciicast::write_checkpoint(worker, number, seconds(1), ledger.take(), last);
    asciicast::write_checkpoint(*parent, number, seconds(1), parent_ledger.take(), false);
  }
  std::vector<SessionVerdict> verify(const std::vector<std::string>& lines) {
    testing::StoredLog log(lines);
    VerifyOptions options;
    options.now = std::chrono::duration_cast<seconds>(clock.now().time_since_epoch()).count();
    Verifier verifier({testing::recording_key_of(key)}, options);
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

bool checkpoint_mentions(const SessionVerdict& v, const std::string& text) {
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
  auto worker = gw.worker();
  auto a = gw.chain(kA);
  gw.connection(*a);
  gw.close(*a);
  auto b = gw.chain(kB);
  gw.connection(*b);  // still open
  gw.checkpoint(*worker);
  gw.checkpoint(*worker);
  const auto lines = gw.sink.lines;

  SUBCASE("untouched: the ended session is OK, the open ones OPEN, nothing fails") {
    auto verdicts = gw.verify(lines);
    CHECK(verdicts.size() == 4);
    CHECK(find(verdicts, kA).ok);
    CHECK(find(verdicts, kB).open);
    CHECK(find(verdicts, kB).problems.empty());
    CHECK(find(verdicts, kWorker).open);
    CHECK(find(verdicts, "gateway-parent").open);
    CHECK(verify_exit_status(verdicts, false) == kVerifyExitOpen);
    CHECK(verdict_word(find(verdicts, kB)) == "OPEN");
  }
  SUBCASE("a session deleted whole is reported by name") {
    auto verdicts = gw.verify(without(lines, [](const json& j) { return of(j, kA); }));
    const auto& a_verdict = find(verdicts, kA);
    CHECK(!a_verdict.ok);
    CHECK(checkpoint_mentions(a_verdict, "no event of it is in the store"));
    CHECK(verify_exit_status(verdicts, false) == kVerifyExitFailed);
  }
  SUBCASE("a session whose end was deleted is truncated, not open") {
    auto verdicts = gw.verify(
        without(lines, [](const json& j) { return of(j, kA) && j["castgate"]["seq"] == 1; }));
    CHECK(checkpoint_mentions(find(verdicts, kA), "says it ended: the record was truncated"));
  }
  SUBCASE("a removed checkpoint is named, besides the gap in its chain") {
    auto verdicts = gw.verify(without(lines, [](const json& j) { return is_checkpoint(j, 1); }));
    const auto& w = find(verdicts, kWorker);
    CHECK(checkpoint_mentions(w, "checkpoint 1 is missing"));
    CHECK(checkpoint_mentions(w, "are missing"));
    CHECK(!w.open);
  }
  SUBCASE("an altered checkpoint does not count and is reported") {
    auto edited = lines;
    for (auto& l : edited)
      if (l.find("\"checkpoint\":{") != std::string::npos) {
        auto at = l.find(kB);
        if (at != std::string::npos) l.replace(at, 6, "sess-x");
      }
    auto verdicts = gw.verify(edited);
    CHECK(checkpoint_mentions(find(verdicts, kWorker), "signature does not verify"));
    CHECK(std::none_of(verdicts.begin(), verdicts.end(),
                       [](const SessionVerdict& v) { return v.session == "sess-x"; }));
  }
  SUBCASE("read long after the instance stopped writing: not open (the gateway died, or a cut)") {
    testing::StoredLog log(lines);
    VerifyOptions options;
    options.now = 1795000000 + 3600;
    Verifier verifier({testing::recording_key_of(gw.key)}, options);
    verifier.add_file(log.file());
    auto verdicts = verifier.finish();
    CHECK(!find(verdicts, kB).open);
    CHECK(checkpoint_mentions(find(verdicts, kB), "the whole gateway stopped without closing it"));
    CHECK(verify_exit_status(verdicts, false) == kVerifyExitFailed);
  }
  SUBCASE("a worker chain no parent names vouches for nothing") {
    // Signed like the real one, but not named by the parent's checkpoints: made up, or signed for
    // a compromised worker under another name.
    auto forged = gw.chain("worker-zzzzzyyyyyyyyyy", false);
    gw.connection(*forged);
    asciicast::CheckpointLedger::Period p;
    p.open = {"zzzzz-victim"};
    asciicast::write_checkpoint(*forged, 1, seconds(1), p, false);
    auto stored = gw.sink.lines;
    auto verdicts = gw.verify(stored);
    CHECK(checkpoint_mentions(find(verdicts, "worker-zzzzzyyyyyyyyyy"), "not believed"));
    CHECK(std::none_of(verdicts.begin(), verdicts.end(),
                       [](const SessionVerdict& v) { return v.session == "zzzzz-victim"; }));
  }
  SUBCASE("a worker naming another worker's sessions is not believed for them") {
    asciicast::CheckpointLedger::Period p;
    p.ended = {"other-session"};
    p.started = {"other-session"};
    gw.clock.advance(seconds(1));
    asciicast::write_checkpoint(*worker, ++gw.number, seconds(1), p, false);
    auto verdicts = gw.verify(gw.sink.lines);
    CHECK(checkpoint_mentions(find(verdicts, kWorker), "which is not one of its chains"));
    CHECK(std::none_of(verdicts.begin(), verdicts.end(),
                       [](const SessionVerdict& v) { return v.session == "other-session"; }));
  }
  SUBCASE("a signed but malformed checkpoint is reported, not believed, and crashes nothing") {
    for (const char* body : {R"({"number":1})", R"({"number":"x","part":{"index":"x"}})",
                             R"({"number":9,"interval":9223372036854775807,"started":[],)"
                             R"("ended":[],"open":[5],"digest":"","last":false})"}) {
      gw.sink.lines.resize(lines.size());
      gw.clock.advance(seconds(1));
      worker->emit_signed(EventKind{"checkpoint", "", ""},
                          json{{"castgate", {{"checkpoint", json::parse(body)}}}});
      auto verdicts = gw.verify(gw.sink.lines);
      CHECK(checkpoint_mentions(find(verdicts, kWorker), "is malformed"));
    }
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
    const auto& b_verdict = find(verdicts, kB);
    CHECK(!b_verdict.open);
    CHECK(checkpoint_mentions(b_verdict, "the store holds later lines of its instance"));
    CHECK(checkpoint_mentions(find(verdicts, kWorker), "later lines of its instance"));
  }
}

TEST_CASE("a session ended after the last checkpoint that names it open is OK") {
  Gateway gw;
  auto worker = gw.worker();
  auto a = gw.chain(kA);
  gw.connection(*a);
  gw.checkpoint(*worker);
  gw.close(*a);
  gw.checkpoint(*worker, true);
  gw.close(*worker);
  gw.parent_ledger.ended(kWorker);
  gw.clock.advance(seconds(1));
  asciicast::write_checkpoint(*gw.parent, ++gw.number, seconds(1), gw.parent_ledger.take(), true);
  gw.close(*gw.parent);
  auto verdicts = gw.verify(gw.sink.lines);
  for (const auto& v : verdicts) CHECK_MESSAGE(v.ok, v.session);
}

TEST_CASE("a long list of open sessions is written in signed parts within the line limit") {
  Gateway gw;
  auto worker = gw.worker();
  std::vector<std::unique_ptr<SessionLog>> open;
  for (int i = 0; i < 400; ++i) {
    open.push_back(gw.chain("pfx12-" + std::to_string(1000000 + i) + "-abcdefabcdef"));
    gw.connection(*open.back());
  }
  gw.checkpoint(*worker);
  size_t parts = 0;
  for (const auto& l : gw.sink.lines) {
    CHECK(l.size() <= 8192);
    if (l.find("\"checkpoint\":{") == std::string::npos) continue;
    auto j = json::parse(l);
    if (j["castgate"]["session"] != kWorker) continue;
    ++parts;
    CHECK(j["castgate"].contains("sig"));
    CHECK(j["castgate"]["checkpoint"]["counts"]["open"] == 400);
  }
  CHECK(parts > 1);
  auto verdicts = gw.verify(gw.sink.lines);
  CHECK(std::all_of(verdicts.begin(), verdicts.end(),
                    [](const SessionVerdict& v) { return v.open && v.problems.empty(); }));
  // One part less: the parts' sessions are not said to be open any more.
  auto fewer = without(gw.sink.lines, [](const json& j) {
    return j["castgate"].contains("checkpoint") && j["castgate"]["checkpoint"].contains("part") &&
           j["castgate"]["checkpoint"]["part"]["index"] == 1;
  });
  auto partial = gw.verify(fewer);
  CHECK(checkpoint_mentions(find(partial, kWorker), "parts of checkpoint 1 are missing"));
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
