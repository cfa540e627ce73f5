#include "player/export.h"

#include <doctest/doctest.h>

#include <sstream>

#include "tests/player/recorded_session.h"

namespace castgate::player {
namespace {

using castgate::player::testing::line_with;
using castgate::player::testing::record_session;
using castgate::player::testing::recording_key_of;
using castgate::player::testing::StoredLog;

std::string exported(const StoredLog& log, const VerifiedChain* only, bool& ok) {
  SessionExporter ex("sess1", /*keep_other_events=*/false, only);
  ex.add_file(log.file());
  std::ostringstream out;
  ok = ex.write(out, 0).has_value();
  return out.str();
}

}  // namespace

TEST_CASE("with a verified chain, the exporter shows the real line, not a forged one before it") {
  auto key = Ed25519PrivateKey::generate();
  auto lines = record_session("sess1", key, {"first\r\n", "the-real-output\r\n", "last\r\n"});
  size_t real = line_with(lines, "the-real-output");
  std::string fake = lines[real];
  fake.replace(fake.find("the-real-output"), 15, "FORGED-OUTPUT!!");
  lines.insert(lines.begin() + 1, fake);  // same seq, earlier in the file
  StoredLog log(lines);

  Verifier verifier({recording_key_of(key)}, {});
  verifier.add_file(log.file());
  auto verdict = verifier.finish().at(0);
  REQUIRE_FALSE(verdict.ok);
  bool ok = false;
  std::string shown = exported(log, &verdict.verified, ok);
  CHECK(ok);
  CHECK(shown.find("the-real-output") != std::string::npos);
  CHECK(shown.find("FORGED") == std::string::npos);
  CHECK(shown.find("first") != std::string::npos);
  CHECK(shown.find("last") != std::string::npos);
  // Without the filter the first line of a seq wins: what the attacker counted on.
  CHECK(exported(log, nullptr, ok).find("FORGED") != std::string::npos);
}

TEST_CASE("with an empty verified chain, the exporter shows nothing") {
  auto key = Ed25519PrivateKey::generate();
  auto lines = record_session("sess1", key, {"some output\r\n"});
  StoredLog log(lines);
  VerifiedChain nothing;
  bool ok = true;
  CHECK(exported(log, &nothing, ok).empty());
  CHECK_FALSE(ok);
}

}  // namespace castgate::player

TEST_CASE("output without a pty: bare LF shown as CRLF, across events, escapes untouched") {
  using castgate::player::crlf_output_event;
  bool cr = false;
  CHECK(crlf_output_event(R"([0.1,"o","tick1\ntick2\n"])", cr) ==
        R"([0.1,"o","tick1\r\ntick2\r\n"])");
  CHECK_FALSE(cr);
  CHECK(crlf_output_event(R"([0.2,"o","a\r\nb\\n\u000a"])", cr) ==
        R"([0.2,"o","a\r\nb\\n\r\n"])");  // "\\n" is a backslash and an n, not a newline
  CHECK(crlf_output_event(R"([0.3,"o","end\r"])", cr) == R"([0.3,"o","end\r"])");
  CHECK(cr);
  CHECK(crlf_output_event(R"([0.4,"o","\nnext é\n"])", cr) == R"([0.4,"o","\nnext é\r\n"])");
  CHECK_FALSE(cr);
  // Resize and input events, and anything unexpected, pass unchanged.
  CHECK(crlf_output_event(R"([0.5,"r","80x24"])", cr) == R"([0.5,"r","80x24"])");
  CHECK(crlf_output_event(R"([0.6,"i","x\n"])", cr) == R"([0.6,"i","x\n"])");
  CHECK(crlf_output_event(R"(garbage)", cr) == "garbage");
  CHECK(crlf_output_event("", cr).empty());
}
