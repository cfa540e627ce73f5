#include "player/verify.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "asciicast/chain.h"
#include "tests/player/recorded_session.h"

namespace castgate::player {
namespace {

using asciicast::chain_hash;
using testing::line_with;
using testing::record_session;
using testing::recording_key_of;
using testing::seq_of;
using testing::StoredLog;

struct Fixture {
  Ed25519PrivateKey key = Ed25519PrivateKey::generate();
  std::vector<std::string> lines =
      record_session("sess1", key,
                     {"real-output-0\r\n", "real-output-1\r\n", "real-output-2\r\n",
                      "real-output-3\r\n", "real-output-4\r\n"});

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
  CHECK(v.problems.empty());
  REQUIRE(v.verified.size() == lines.size());
  for (const auto& line : lines) CHECK(v.verified.contains(seq_of(line), chain_hash(line)));
}

TEST_CASE_FIXTURE(Fixture, "a truncated record has no verified event") {
  lines.pop_back();  // the signed end
  auto v = verdict(lines);
  CHECK_FALSE(v.ok);
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

}  // namespace castgate::player
