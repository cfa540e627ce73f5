#include "player/verify.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "asciicast/chain.h"
#include "asciicast/untrusted_text.h"
#include "player/catalog.h"
#include "tests/player/recorded_session.h"

namespace castgate::player {
namespace {

using asciicast::chain_hash;
using castgate::player::testing::line_with;
using castgate::player::testing::record_session;
using castgate::player::testing::recording_key_of;
using castgate::player::testing::seq_of;
using castgate::player::testing::session_lost_fields;
using castgate::player::testing::session_lost_kind;
using castgate::player::testing::StoredLog;

const std::vector<std::string> kOutputs = {"real-output-0\r\n", "real-output-1\r\n",
                                           "real-output-2\r\n", "real-output-3\r\n",
                                           "real-output-4\r\n"};
const std::string kLostReason =
    "the castgate worker process serving this session ended unexpectedly (killed by signal 9); "
    "events it had not yet written are lost";

struct Fixture {
  Ed25519PrivateKey key = Ed25519PrivateKey::generate();
  std::vector<std::string> lines = record_session("sess1", key, kOutputs);
  // The same session, ended by castgate's parent process after its worker process died.
  std::vector<std::string> lost_lines =
      record_session("sess1", key, kOutputs, session_lost_kind(), session_lost_fields());

  struct Checked {
    std::string path;  // of the stored log
    std::vector<SessionVerdict> verdicts;
    std::vector<std::string> foreign;
  };
  Checked check(const std::vector<std::string>& stored, VerifyOptions options = {}) {
    StoredLog log(stored);
    Verifier verifier({recording_key_of(key)}, options);
    verifier.add_file(log.file());
    Checked checked{log.path(), verifier.finish(), {}};
    checked.foreign = verifier.foreign_lines();
    return checked;
  }
  SessionVerdict verdict(const std::vector<std::string>& stored, VerifyOptions options = {}) {
    auto checked = check(stored, options);
    REQUIRE(checked.verdicts.size() == 1);
    return checked.verdicts[0];
  }
};

bool mentions(const SessionVerdict& v, const std::string& text) {
  for (const auto& p : v.problems)
    if (p.find(text) != std::string::npos) return true;
  return false;
}

// `line` with its recorded text changed, its seq and prev kept.
std::string forged(std::string line) {
  auto at = line.find("real-output");
  REQUIRE(at != std::string::npos);
  return line.replace(at, 4, "FAKE");
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "every event of an untouched record is verified") {
  auto v = verdict(lines);
  CHECK(v.ok);
  CHECK_FALSE(v.lost);
  CHECK(v.problems.empty());
  REQUIRE(v.verified.size() == lines.size());
  for (const auto& line : lines) CHECK(v.verified.contains(seq_of(line), chain_hash(line)));
}

TEST_CASE_FIXTURE(Fixture, "a truncated record has no verified event") {
  lines.pop_back();  // the signed end
  auto v = verdict(lines);
  CHECK_FALSE(v.ok);
  CHECK_FALSE(v.lost);
  CHECK(mentions(v, "truncated"));
  CHECK(v.verified.empty());
}

TEST_CASE_FIXTURE(Fixture, "a record signed by an unknown key has no verified event") {
  key = Ed25519PrivateKey::generate();  // the verifier trusts another key than the writer's
  auto v = verdict(lines);
  CHECK_FALSE(v.ok);
  CHECK(v.verified.empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "a forged line with a real seq, placed before the real one, is not verified") {
  size_t real = line_with(lines, "real-output-2");
  std::string fake = forged(lines[real]);
  auto stored = lines;
  stored.insert(stored.begin() + 1, fake);  // earlier in the file than the real one
  auto v = verdict(stored);
  CHECK_FALSE(v.ok);
  CHECK(mentions(v, "appears twice"));
  CHECK(v.verified.size() == lines.size());
  CHECK(v.verified.contains(seq_of(lines[real]), chain_hash(lines[real])));
  CHECK_FALSE(v.verified.contains(seq_of(fake), chain_hash(fake)));
}

TEST_CASE_FIXTURE(Fixture, "an altered event is not verified, nor anything before it") {
  size_t k = line_with(lines, "real-output-2");
  auto stored = lines;
  stored[k] = forged(lines[k]);
  auto v = verdict(stored);
  CHECK_FALSE(v.ok);
  CHECK(mentions(v, "altered"));
  // The event after k names k's original hash: k is out, and the chain back stops there.
  CHECK(v.verified.size() == lines.size() - k - 1);
  for (size_t i = 0; i < lines.size(); ++i)
    CHECK(v.verified.contains(seq_of(lines[i]), chain_hash(lines[i])) == (i > k));
  CHECK_FALSE(v.verified.contains(seq_of(stored[k]), chain_hash(stored[k])));
}

TEST_CASE_FIXTURE(Fixture, "events appended after the signed end are not verified") {
  auto extra = nlohmann::json::parse(lines.back());
  extra["castgate"]["seq"] = lines.size();
  extra["castgate"]["prev"] = chain_hash(lines.back());
  extra["castgate"].erase("sig");
  extra["castgate"].erase("final");
  auto stored = lines;
  stored.push_back(extra.dump());
  auto v = verdict(stored);
  CHECK_FALSE(v.ok);
  CHECK(v.verified.size() == lines.size());
  CHECK_FALSE(v.verified.contains(lines.size(), chain_hash(stored.back())));
}

TEST_CASE_FIXTURE(Fixture,
                  "a line that names a session but is not an event is that session's problem") {
  size_t k = line_with(lines, "real-output-1");
  auto no_seq = nlohmann::json::parse(lines[k]);
  no_seq["castgate"].erase("seq");
  size_t cut = lines[k].find("\"session\":\"sess1\"") + 30;
  const std::vector<std::pair<std::string, std::string>> broken = {
      {lines[k].substr(0, cut), "is not valid JSON"},  // cut short
      {R"({"castgate":{"session":"sess1"}} trailing junk)", "is not valid JSON"},
      {R"({"castgate":{"session":"sess1"},"note":"appended"})", "is not a castgate event"},
      {"{\"castgate\":{\"session\":\"sess1\",\"note\":\"\xff\xfe\"}}", "is not valid UTF-8"},
      {no_seq.dump(), "has no castgate.seq or castgate.prev"},
      {R"({"log":"{\"@timestamp\":\"2026\",\"castgate\":{\"session\":\"sess1\",\"seq)",
       "is not valid JSON"},  // cut inside a container runtime's wrapper
  };
  for (const auto& [line, what] : broken) {
    CAPTURE(line);
    auto stored = lines;
    stored.push_back(line);
    for (bool needle : {false, true}) {  // every line read, or only those holding the id
      VerifyOptions options;
      if (needle) options.session = "sess1";
      auto checked = check(stored, options);
      REQUIRE(checked.verdicts.size() == 1);
      CHECK_FALSE(checked.verdicts[0].ok);
      std::string expected =
          checked.path + ":" + std::to_string(stored.size()) + " names this session but " + what;
      CHECK(mentions(checked.verdicts[0], expected));
      CHECK(checked.foreign.empty());  // reported once, as the session's problem
      // The whole events still verify: the broken line takes nothing away from them.
      CHECK(checked.verdicts[0].verified.size() == lines.size());
    }
  }
}

TEST_CASE_FIXTURE(Fixture, "a broken line naming no session of the input is foreign") {
  auto stored = lines;
  stored.push_back(R"({"session":"not-castgate","msg":"another program's log)");
  stored.push_back("plain text, no session at all");
  for (bool strict : {false, true}) {
    VerifyOptions options;
    options.strict = strict;
    auto checked = check(stored, options);
    REQUIRE(checked.verdicts.size() == 1);
    CHECK(checked.verdicts[0].ok);
    CHECK(checked.foreign.size() == (strict ? 2 : 0));
  }
}

// ---- sessions the gateway lost (castgate.lost on the signed final event) ----

namespace {

// `line` (a final event) with castgate.lost added as castgate's parent writes it, and its
// signature left as it was.
std::string with_lost_claim(const std::string& line) {
  auto j = nlohmann::json::parse(line);
  j["castgate"]["lost"] = {{"worker_pid", 1234}, {"signal", 9}};
  j["event"]["action"] = "session.lost";
  j["event"]["reason"] = kLostReason;
  return asciicast::canonical_dump(j);
}

// The lines of a session whose middle event carries castgate.lost, ended normally and signed.
std::vector<std::string> record_with_lost_member_inside(const Ed25519PrivateKey& key) {
  testing::MemorySink sink;
  ManualClock clock;
  asciicast::SessionLogOptions opts;
  opts.instance = "gw-test";
  asciicast::LocalRecordSigner signer(key);
  opts.signing_key = &signer;
  asciicast::SessionLog log(opts, "sess1", asciicast::Endpoint{"192.0.2.7", 50000}, sink,
                            std::make_shared<asciicast::Backlog>(1 << 20), clock);
  log.emit(asciicast::EventKind{"session.start", "success", ""});
  log.emit(session_lost_kind(), session_lost_fields());  // not final: means nothing
  log.end(asciicast::EventKind{"session.end", "", "closed"}, nlohmann::json::object());
  return sink.lines;
}

std::string report(const std::vector<SessionVerdict>& verdicts, bool json, int& status,
                   const std::vector<std::string>& foreign = {}) {
  std::ostringstream out;
  status = write_verify_report(out, verdicts, foreign, json);
  return out.str();
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a session the gateway lost is authentic but incomplete: LOST") {
  auto v = verdict(lost_lines);
  CHECK_FALSE(v.ok);  // callers that only look at ok stay fail-closed
  CHECK(v.lost);
  CHECK(v.signed_ok);
  CHECK(v.problems.empty());
  CHECK(v.lost_reason == kLostReason);
  CHECK(v.lost_cut_line.empty());
  CHECK(v.events == lost_lines.size());
  // Every event is vouched for: the lost session can be shown whole.
  REQUIRE(v.verified.size() == lost_lines.size());
  for (const auto& line : lost_lines) CHECK(v.verified.contains(seq_of(line), chain_hash(line)));
  CHECK(verdict_word(v) == "LOST");

  int status = -1;
  std::string text = report({v}, false, status);
  CHECK(status == kVerifyExitLost);
  CHECK(status == 3);
  CHECK(text == "LOST   sess1  " + std::to_string(lost_lines.size()) +
                    " events, signature valid\n"
                    "       - lost by the gateway: " +
                    kLostReason +
                    "\n"
                    "1 session: 0 OK, 1 LOST, 0 FAILED\n");

  auto j = nlohmann::json::parse(report({v}, true, status));
  CHECK(status == 3);
  CHECK(j["ok"] == false);
  CHECK(j["lost"] == true);
  CHECK(j["lost_reason"] == kLostReason);
  CHECK(j["signed"] == true);
  CHECK(j["problems"].empty());
}

TEST_CASE_FIXTURE(Fixture, "the lost reason is printed with its control characters escaped") {
  auto hostile =
      record_session("sess1", key, kOutputs, {"session.lost", "failure", "died\x1b]0;x\x07"},
                     session_lost_fields());
  auto v = verdict(hostile);
  REQUIRE(v.lost);
  CHECK(v.lost_reason == "died\x1b]0;x\x07");  // as recorded (verify --json keeps it exact)
  int status = -1;
  std::string text = report({v}, false, status);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find("lost by the gateway: died\\x1b]0;x\\x07\n") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "castgate.lost added to a signed final event breaks its signature") {
  for (auto* record : {&lines, &lost_lines}) {
    auto stored = *record;
    if (record == &lines) {
      stored.back() = with_lost_claim(stored.back());
    } else {
      // An attacker's own reason on the real lost event.
      auto j = nlohmann::json::parse(stored.back());
      j["event"]["reason"] = "nothing to see here";
      stored.back() = asciicast::canonical_dump(j);
    }
    REQUIRE(stored.back() != record->back());
    auto v = verdict(stored);
    CHECK_FALSE(v.ok);
    CHECK_FALSE(v.lost);
    CHECK(v.lost_reason.empty());
    CHECK(mentions(v, "the signature of the final event does not verify (altered)"));
    CHECK(verdict_word(v) == "FAILED");
    int status = -1;
    std::string text = report({v}, false, status);
    CHECK(status == kVerifyExitFailed);
    CHECK(text.rfind("FAILED sess1  ", 0) == 0);
    CHECK(text.find("LOST ") == std::string::npos);
    CHECK(text.find("1 session: 0 OK, 0 LOST, 1 FAILED\n") != std::string::npos);
  }
}

TEST_CASE_FIXTURE(Fixture, "castgate.lost on an event that is not final means nothing") {
  auto v = verdict(record_with_lost_member_inside(key));
  CHECK(v.ok);
  CHECK_FALSE(v.lost);
  CHECK(v.lost_reason.empty());
  // Nor on the last line of a chain without a final event.
  auto stored = lost_lines;
  auto last = nlohmann::json::parse(stored.back());
  last["castgate"].erase("final");
  last["castgate"].erase("sig");
  last["castgate"].erase("signer");
  stored.back() = asciicast::canonical_dump(last);
  auto cut = verdict(stored);
  CHECK_FALSE(cut.ok);
  CHECK_FALSE(cut.lost);
  CHECK(mentions(cut, "no final event: the record is truncated (or the session is still open)"));
}

TEST_CASE_FIXTURE(Fixture,
                  "a lost session whose closing event was deleted is truncated, not lost") {
  auto stored = lost_lines;
  stored.pop_back();
  auto v = verdict(stored);
  CHECK_FALSE(v.ok);
  CHECK_FALSE(v.lost);
  REQUIRE(v.problems.size() == 1);
  CHECK(v.problems[0] == "no final event: the record is truncated (or the session is still open)");
  int status = -1;
  report({v}, false, status);
  CHECK(status == kVerifyExitFailed);
}

TEST_CASE_FIXTURE(Fixture, "a lost session with an event missing or altered fails") {
  size_t k = line_with(lost_lines, "real-output-2");
  auto deleted = lost_lines;
  deleted.erase(deleted.begin() + static_cast<long>(k));
  auto v = verdict(deleted);
  CHECK_FALSE(v.ok);
  CHECK_FALSE(v.lost);
  CHECK(mentions(v, "missing"));
  auto altered = lost_lines;
  altered[k] = forged(altered[k]);
  v = verdict(altered);
  CHECK_FALSE(v.ok);
  CHECK_FALSE(v.lost);
  CHECK(mentions(v, "altered"));
}

TEST_CASE_FIXTURE(Fixture,
                  "the line a dying worker left cut short is tolerated only if signed as cut") {
  auto with_cut = record_session("sess1", key, kOutputs, session_lost_kind(),
                                 session_lost_fields(/*cut=*/true));
  // What the worker was writing: a line naming the session, cut short, before the closing event.
  std::string half = with_cut[line_with(with_cut, "real-output-4")];
  half = half.substr(0, half.find("\"session\":\"sess1\"") + 30);
  auto stored = with_cut;
  stored.insert(stored.end() - 1, half);
  auto checked = check(stored);
  REQUIRE(checked.verdicts.size() == 1);
  auto v = checked.verdicts[0];
  CHECK(v.lost);
  CHECK_FALSE(v.ok);
  CHECK(v.problems.empty());
  CHECK(v.lost_cut_line == checked.path + ":" + std::to_string(stored.size() - 1));
  int status = -1;
  std::string text = report({v}, false, status);
  CHECK(status == kVerifyExitLost);
  CHECK(text.find("       - " + v.lost_cut_line + " is the line it was writing, cut short") !=
        std::string::npos);

  // Without castgate.lost.cut the cut line is a problem.
  stored = lost_lines;
  stored.insert(stored.end() - 1, half);
  v = verdict(stored);
  CHECK_FALSE(v.lost);
  CHECK(mentions(v, "names this session but is not valid JSON"));
  // Two cut lines, or a line that is whole JSON but no event, are more than a dying worker leaves.
  const std::vector<std::vector<std::string>> not_a_cut = {
      {half, half}, {R"({"castgate":{"session":"sess1"},"note":"appended"})"}};
  for (const auto& extra : not_a_cut) {
    stored = with_cut;
    stored.insert(stored.end() - 1, extra.begin(), extra.end());
    v = verdict(stored);
    CHECK_FALSE(v.lost);
    CHECK_FALSE(v.ok);
    CHECK(v.lost_cut_line.empty());
  }
}

TEST_CASE_FIXTURE(Fixture, "verify's exit status: 0 all OK, 3 only LOST besides OK, 1 any FAILED") {
  auto ok = verdict(lines);
  auto lost = verdict(lost_lines);
  auto truncated = lines;
  truncated.pop_back();
  auto failed = verdict(truncated);
  REQUIRE(ok.ok);
  REQUIRE(lost.lost);
  REQUIRE_FALSE(failed.ok);
  REQUIRE_FALSE(failed.lost);
  CHECK(verify_exit_status({ok}, false) == 0);
  CHECK(verify_exit_status({ok, ok}, false) == 0);
  CHECK(verify_exit_status({lost}, false) == 3);
  CHECK(verify_exit_status({ok, lost, ok}, false) == 3);
  CHECK(verify_exit_status({failed}, false) == 1);
  CHECK(verify_exit_status({ok, lost, failed}, false) == 1);
  CHECK(verify_exit_status({failed, lost}, false) == 1);
  CHECK(verify_exit_status({}, false) == 1);   // nothing found
  CHECK(verify_exit_status({ok}, true) == 1);  // --strict: a line that is no event
  CHECK(verify_exit_status({lost}, true) == 1);

  int status = -1;
  std::string text = report({ok, lost, failed}, false, status);
  CHECK(status == 1);
  CHECK(text.find("OK     sess1  ") == 0);
  CHECK(text.find("\nLOST   sess1  ") != std::string::npos);
  CHECK(text.find("\nFAILED sess1  ") != std::string::npos);
  CHECK(text.find("\n3 sessions: 1 OK, 1 LOST, 1 FAILED\n") != std::string::npos);
  text = report({ok}, false, status, {"x.log:3 is not a castgate event"});
  CHECK(status == 1);
  CHECK(text == "OK     sess1  " + std::to_string(lines.size()) +
                    " events, signature valid\n"
                    "FAILED x.log:3 is not a castgate event\n"
                    "1 session: 1 OK, 0 LOST, 0 FAILED; and lines that are not castgate events\n");
  // --json: one object per session, no summary.
  text = report({ok, lost}, true, status);
  CHECK(status == 3);
  std::istringstream json_lines(text);
  std::string line;
  int objects = 0;
  while (std::getline(json_lines, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["lost"] == (objects == 1));
    CHECK(j.contains("lost_reason") == (objects == 1));
    ++objects;
  }
  CHECK(objects == 2);
}

TEST_CASE_FIXTURE(Fixture, "list shows a session the gateway lost as lost") {
  StoredLog log(lost_lines);
  Catalog catalog;
  catalog.add_file(log.file());
  auto sessions = catalog.sessions({});
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].lost);
  CHECK(sessions[0].lost_reason == kLostReason);
  CHECK(sessions[0].lost_cause == "killed by signal 9");
  CHECK_FALSE(sessions[0].end.empty());
  StoredLog ended(lines);
  Catalog normal;
  normal.add_file(ended.file());
  sessions = normal.sessions({});
  REQUIRE(sessions.size() == 1);
  CHECK_FALSE(sessions[0].lost);
}

TEST_CASE("session_named_in finds the id in raw, spaced and container-wrapped lines") {
  CHECK(session_named_in(R"({"castgate":{"seq":1,"session":"abc"},"x":1)") == "abc");
  CHECK(session_named_in(R"({"castgate": {"session" : "abc", "seq)") == "abc");
  CHECK(session_named_in(R"({"log":"{\"castgate\":{\"session\":\"abc\",\"seq\":)") == "abc");
  CHECK(session_named_in(R"(2026-01-01T00:00:00Z stdout F {"castgate":{"session":"abc")") == "abc");
  // The raw form wins over recorded text that only looks like it.
  CHECK(session_named_in(R"({"o":"\"session\":\"fake\"","castgate":{"session":"abc"}})") == "abc");
  CHECK(session_named_in(R"({"castgate":{"session":"ab)").empty());  // the id is cut
  CHECK(session_named_in(R"({"castgate":{"session":""}})").empty());
  CHECK(session_named_in(R"({"castgate":{"sessions":"abc"}})").empty());
  CHECK(session_named_in("no json here").empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "a signed end with a second castgate object does not seal a cut record") {
  // The end's own castgate object (signed) stays last, where one JSON reader looks; a first one,
  // where another reader looks, claims to end the chain at event 2: events 2.. are dropped.
  const std::string& end = lines.back();
  std::string decoy = R"({"castgate":{"final":true,"prev":")" + chain_hash(lines[1]) +
                      R"(","seq":2,"session":"sess1"},)";
  std::string doctored = decoy + end.substr(1);
  std::vector<std::string> stored = {lines[0], lines[1], doctored};
  auto v = verdict(stored);
  CHECK_FALSE(v.ok);
  CHECK_FALSE(v.lost);
  // At most the signed end itself is authentic; nothing before it is vouched for.
  CHECK(v.verified.size() <= 1);
  CHECK_FALSE(v.verified.contains(seq_of(lines[1]), chain_hash(lines[1])));
  // The same with the parent's signed session.lost as the donor: not LOST either.
  std::string lost_doctored = decoy + lost_lines.back().substr(1);
  auto l = verdict({lost_lines[0], lost_lines[1], lost_doctored});
  CHECK_FALSE(l.ok);
  CHECK_FALSE(l.lost);
}

}  // namespace castgate::player
