#include "asciicast/session_log.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "asciicast/chain.h"
#include "asciicast/channel_recording.h"
#include "asciicast/utf8.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/asciicast/memory_sink.h"

using namespace castgate;
using namespace castgate::asciicast;
using nlohmann::json;

namespace {

using castgate::asciicast::testing::MemorySink;

Identity alice() {
  Identity id;
  id.subject = "alice";
  id.name = "Alice Example";
  id.email = "alice@example.com";
  id.groups = {"ops", "dba"};
  id.issuer = "castgate:identities";
  id.auth_method = "publickey";
  return id;
}

}  // namespace

TEST_CASE("every line is canonical JSON, chained and signed") {
  MemorySink sink;
  ManualClock clock;
  auto key = Ed25519PrivateKey::generate();
  SessionLogOptions opts;
  opts.instance = "gw-test";
  opts.max_line = 2048;
  LocalRecordSigner signer(key);
  opts.signing_key = &signer;
  SessionLog log(opts, "sess1", Endpoint{"192.0.2.7", 50000}, sink,
                 std::make_shared<Backlog>(1 << 20), clock);
  log.emit(EventKind{"connection.accepted", "", ""});
  log.set_identity(alice());
  log.set_target("db1.int", Endpoint{"10.0.0.5", 22}, "ubuntu");
  ChannelRecording rec(log, 0, clock, nullptr);
  ChannelHeader h;
  h.title = "t";
  h.kind = ChannelKind::kShell;
  rec.start(h);
  clock.advance(std::chrono::microseconds(1500000));
  rec.from_target("hello \"world\"\r\n\x01\x7f \xe2\x82", false);
  rec.from_target("\xac done", false);
  rec.from_user("ls\r");
  rec.resize(100, 40);
  std::string big(10000, 'x');
  rec.from_target(big, true);
  rec.finish();
  log.end(EventKind{"session.end", "", "closed"}, json::object());

  REQUIRE(sink.lines.size() >= 8);
  std::string prev(kGenesisHash);
  std::string out_text;
  for (size_t i = 0; i < sink.lines.size(); ++i) {
    const auto& line = sink.lines[i];
    CHECK(line.size() <= opts.max_line);
    CHECK(utf8_valid(line));
    json j = json::parse(line);
    CHECK(j.dump() == line);  // canonical: exactly what nlohmann writes
    CHECK(j["castgate"]["seq"] == i);
    CHECK(j["castgate"]["prev"] == prev);
    CHECK(j["event"]["sequence"] == i);
    CHECK(j["event"]["id"] == "sess1:" + std::to_string(i));  // json and asciicast lines alike
    CHECK(j["castgate"]["session"] == "sess1");
    CHECK(j["castgate"]["instance"] == "gw-test");
    CHECK(j["source"]["ip"] == "192.0.2.7");
    if (i >= 1) CHECK(j["user"]["email"] == "alice@example.com");
    prev = chain_hash(line);
    if (j.contains("asciicast") && j["asciicast"].contains("event")) {
      auto ev = j["asciicast"]["event"];
      CHECK(ev[0].get<double>() >= 0);
      if (ev[1] == "o" && j["event"]["action"] == "asciicast.output")
        out_text += ev[2].get<std::string>();
    }
  }
  CHECK(out_text == "hello \"world\"\r\n\x01\x7f \xe2\x82\xac done");
  // The last line's signature covers it without the sig member.
  json last = json::parse(sink.lines.back());
  REQUIRE(last["castgate"].contains("sig"));
  std::string sig = *base64_decode(last["castgate"]["sig"].get<std::string>());
  last["castgate"].erase("sig");
  CHECK(ed25519_verify(key.public_key_raw(), signature_payload(last.dump()), sig));
  last["castgate"]["seq"] = 99;
  CHECK_FALSE(ed25519_verify(key.public_key_raw(), signature_payload(last.dump()), sig));
}

TEST_CASE("a long exec command is split over several lines that each fit") {
  MemorySink sink;
  ManualClock clock;
  SessionLogOptions opts;
  opts.max_line = 1024;
  SessionLog log(opts, "s", Endpoint{"::1", 1}, sink, std::make_shared<Backlog>(1 << 20), clock);
  std::string cmd;
  for (int i = 0; i < 500; ++i) cmd += "echo \"\xe2\x82\xac" + std::to_string(i) + "\"; ";
  log.emit(EventKind{"command", "", ""}, json{{"process", {{"command_line", cmd}}}}, 1,
           "/process/command_line");
  REQUIRE(sink.lines.size() > 3);
  std::string joined;
  for (auto& l : sink.lines) {
    CHECK(l.size() <= 1024);
    json j = json::parse(l);
    joined += j["process"]["command_line"].get<std::string>();
    CHECK(j["castgate"]["part"]["count"] == sink.lines.size());
    CHECK(j["event"]["id"] == "s:" + j["castgate"]["seq"].dump());  // each part its own id
  }
  CHECK(joined == cmd);
}

TEST_CASE("byte counts name a destination only when the record has one") {
  MemorySink sink;
  ManualClock clock;
  SessionLog log(SessionLogOptions{}, "s", Endpoint{"192.0.2.7", 50000}, sink,
                 std::make_shared<Backlog>(1 << 20), clock);
  log.set_identity(alice());
  auto ended_with_bytes = [&](const char* action) {
    json f;
    log.add_byte_counts(f, 12, 345);
    if (std::string_view(action) == "channel.end")
      log.emit(EventKind{action, "", "closed"}, std::move(f), 0);
    else
      log.end(EventKind{action, "", "closed"}, std::move(f));
    return json::parse(sink.lines.back());
  };
  SUBCASE("refused before routing: no target, so no destination") {
    for (const char* action : {"channel.end", "connection.closed"}) {
      CAPTURE(action);
      json j = ended_with_bytes(action);
      CHECK_FALSE(j.contains("destination"));
      CHECK(j["source"] == json{{"ip", "192.0.2.7"}, {"port", 50000}, {"bytes", 12}});
      CHECK(j["castgate"]["bytes"] == json{{"to_user", 345}, {"to_target", 12}});
    }
  }
  SUBCASE("routed: the destination's bytes next to its address") {
    log.set_target("db1.int", Endpoint{"10.0.0.5", 22}, "ubuntu");
    for (const char* action : {"channel.end", "session.end"}) {
      CAPTURE(action);
      json j = ended_with_bytes(action);
      CHECK(j["destination"]["address"] == "db1.int");
      CHECK(j["destination"]["bytes"] == 345);
      CHECK(j["source"]["bytes"] == 12);
    }
  }
  SUBCASE("a caller's destination without an address never reaches a line") {
    log.emit(EventKind{"channel.end", "", "closed"}, json{{"destination", {{"bytes", 1}}}}, 0);
    json j = json::parse(sink.lines.back());
    CHECK_FALSE(j.contains("destination"));
    CHECK(j["event"]["id"] == "s:" + j["castgate"]["seq"].dump());
  }
}

TEST_CASE("a gateway-level chain names no source: its byte counts stay castgate's") {
  MemorySink sink;
  ManualClock clock;
  SessionLog log(SessionLogOptions{}, "gateway-x", Endpoint{"", 0}, sink,
                 std::make_shared<Backlog>(1 << 20), clock);
  json f;
  log.add_byte_counts(f, 1, 2);
  log.emit(EventKind{"gateway.stop", "", ""}, std::move(f));
  json j = json::parse(sink.lines.back());
  CHECK_FALSE(j.contains("source"));
  CHECK_FALSE(j.contains("destination"));
  CHECK(j["event"]["id"] == "gateway-x:0");
}

TEST_CASE("backlog pauses producers and wakes them once drained") {
  int woken = 0;
  Backlog b(100, [&] { ++woken; });
  CHECK(b.has_room());
  b.add(150);
  CHECK_FALSE(b.has_room());
  b.release(20);
  CHECK(woken == 0);  // still above half of the high-water mark
  b.release(100);
  CHECK(woken == 1);
  CHECK(b.has_room());
}

#include "asciicast/json_text.h"

TEST_CASE("asciicast times are written exactly as nlohmann would write them") {
  for (int64_t us : {0LL, 1LL, 99LL, 100LL, 101LL, 1000LL, 141952LL, 1000000LL, 1500000LL,
                     12345678LL, 3600000000LL, 86400123456LL, 999999999999LL}) {
    std::string fast;
    append_json_seconds(fast, us);
    CHECK(fast == nlohmann::json(static_cast<double>(us) / 1e6).dump());
  }
  for (int64_t us = 0; us < 3000000; us += 7919) {
    std::string fast;
    append_json_seconds(fast, us);
    REQUIRE(fast == nlohmann::json(static_cast<double>(us) / 1e6).dump());
  }
  std::string ts;
  auto t = std::chrono::system_clock::now();
  castgate::append_rfc3339_micros(ts, t);
  CHECK(ts == castgate::rfc3339_micros(t));
}

#include "asciicast/secret_answer_masker.h"
#include "asciicast/terminal_tracker.h"
#include "asciicast/untrusted_text.h"

TEST_CASE("untrusted text never breaks a line: invalid UTF-8 is replaced, long values are cut") {
  MemorySink sink;
  ManualClock clock;
  auto key = Ed25519PrivateKey::generate();
  SessionLogOptions opts;
  opts.max_line = 4096;
  LocalRecordSigner signer(key);
  opts.signing_key = &signer;
  SessionLog log(opts, "s", Endpoint{"::1", 1}, sink, std::make_shared<Backlog>(1 << 20), clock);
  Identity id = alice();
  id.subject = std::string(100000, 'k') + "\xff";  // a key id of 100 KB from a certificate
  id.name = "\xc3\x28 bad";
  log.set_identity(id);
  log.set_target("db1.int", Endpoint{"10.0.0.5", 22}, "\xff\xfeuser");
  std::string huge_path = std::string(50000, 'p') + "\xe9";
  log.emit(EventKind{"file.open", "success", "\xff reason"},
           json{{"file", {{"path", huge_path}, {"target_path", std::string(9000, 't')}}}});
  log.end(EventKind{"session.end", "", "\xfe"},
          json{{"castgate", {{"end_reason", std::string(20000, 'e')}}}});
  REQUIRE(sink.lines.size() == 2);
  for (const auto& line : sink.lines) {
    CHECK(line.size() <= opts.max_line);
    CHECK(utf8_valid(line));
  }
  json open = json::parse(sink.lines[0]);
  std::string path = open["file"]["path"];
  // Cut with a marker naming the whole value's length and SHA-256 (of its valid UTF-8 form).
  CHECK(path.find("…[truncated: 50003 bytes, sha256 ") != std::string::npos);
  CHECK(path.find(castgate::sha256_hex(valid_utf8(huge_path))) != std::string::npos);
  auto truncated = open["castgate"]["truncated"];
  CHECK(std::find(truncated.begin(), truncated.end(), "/file/path") != truncated.end());
  CHECK(open["event"]["reason"] == "\xef\xbf\xbd reason");
  CHECK(open["destination"]["user"]["name"] == "\xef\xbf\xbd\xef\xbf\xbduser");
  CHECK(open["user"]["id"].get<std::string>().find("…[truncated: 100003 bytes") !=
        std::string::npos);
  // The signed last line fits too, and its signature checks.
  json last = json::parse(sink.lines[1]);
  std::string sig = *base64_decode(last["castgate"]["sig"].get<std::string>());
  last["castgate"].erase("sig");
  CHECK(ed25519_verify(key.public_key_raw(), signature_payload(last.dump()), sig));
}

TEST_CASE("without a terminal, the line answering a password prompt is masked") {
  const std::string mask(TerminalTracker::kMask);
  {
    SecretAnswerMasker m;  // typed after the prompt
    CHECK(m.output("[sudo] password for alice: ").empty());
    CHECK(m.input("hunter2\n") == mask + "\n");
    CHECK(m.input("ls\n").empty());  // held until the program answers
    CHECK(m.output("file1\n") == "ls\n");
  }
  {
    SecretAnswerMasker m;  // piped in before the prompt appears
    CHECK(m.input("hunter2\n").empty());
    CHECK(m.output("Password: ") == mask + "\n");
  }
  {
    SecretAnswerMasker m;  // started before the prompt, finished after it
    CHECK(m.input("hun").empty());
    CHECK(m.output("Password: ").empty());
    CHECK(m.input("ter2\n") == mask + "\n");
  }
  {
    SecretAnswerMasker m;  // an ordinary conversation is recorded as it is
    CHECK(m.input("echo a\necho b\n").empty());
    CHECK(m.output("a\nb\n") == "echo a\necho b\n");
    CHECK(m.finish().empty());
  }
  {
    // printf '%s\ny\n' "$PW" | ssh host sudo -S apt remove foo: sudo reads the first line, apt
    // the second. Both arrive in one packet before the prompt.
    SecretAnswerMasker m;
    CHECK(m.input("hunter2\ny\n").empty());
    CHECK(m.output("[sudo] password for alice: ") == mask + "\ny\n");
    CHECK(m.finish().empty());
  }
  {
    SecretAnswerMasker m;  // the same, the password finishing in a later packet
    CHECK(m.input("hun").empty());
    CHECK(m.input("ter2\ny\nn").empty());
    CHECK(m.output("Password: ") == mask + "\ny\n");
    CHECK(m.finish() == "n");
  }
  {
    // A bulk upload to a program that says nothing: held up to kMaxHeld, then recorded, all but
    // the first line, which waits for the program (or the end).
    SecretAnswerMasker m;
    std::string line(100, 'x');
    line += '\n';
    std::string out;
    for (int i = 0; i < 1000; ++i) out += m.input(line);
    CHECK(out.size() + SecretAnswerMasker::kMaxHeld >= 999 * line.size());
    CHECK(out.size() < 1000 * line.size());
    out += m.finish();
    CHECK(out.size() == 1000 * line.size());
    CHECK(out.find(mask) == std::string::npos);
    SecretAnswerMasker big;
    CHECK(big.input(std::string(SecretAnswerMasker::kMaxHeld + 1, '\n')).size() ==
          SecretAnswerMasker::kMaxHeld);
  }
  {
    // (echo "$PW"; cat backup.tar) | ssh host sudo -S tar x: a megabyte before sudo's prompt.
    SecretAnswerMasker m;
    std::string out = m.input("hunter2\n");
    for (int i = 0; i < 256; ++i)
      out += m.input(std::string(4000, 'd') + "\n" + std::string(95, 'e'));
    CHECK(out.find("hunter2") == std::string::npos);
    out += m.output("[sudo] password for alice: ");
    out += m.finish();
    CHECK(out.find("hunter2") == std::string::npos);
    CHECK(out.find(mask) != std::string::npos);
    // A long line with no newline (binary data) releases the rest, not the first line.
    SecretAnswerMasker n;
    out = n.input("hunter2\nabc\n");
    out += n.input(std::string(SecretAnswerMasker::kMaxLine + 10, 'z'));
    CHECK(out.find("hunter2") == std::string::npos);
    CHECK(out.find("abc") != std::string::npos);
    CHECK(n.output("Password: ") == mask + "\n");
  }
  {
    // A prompt written with its terminating NUL is a prompt.
    SecretAnswerMasker m;
    CHECK(m.output(std::string_view("Password: \0", 11)).empty());
    CHECK(m.input("hunter2\n") == mask + "\n");
  }
  {
    SecretAnswerMasker m;  // a never-ending answer is masked as it goes, and not held
    m.output("Password: ");
    std::string out = m.input(std::string(100000, 's'));
    CHECK(out == mask);
    CHECK(m.input(std::string(100000, 's')).empty());
    CHECK(m.input("\n") == "\n");
  }
}

TEST_CASE("searchable text: output also as ECS message, within the line limit, nothing lost") {
  MemorySink sink;
  ManualClock clock;
  SessionLogOptions opts;
  opts.instance = "gw-test";
  opts.max_line = 4096;
  opts.searchable_text = true;
  SessionLog log(opts, "sess1", Endpoint{"192.0.2.7", 50000}, sink,
                 std::make_shared<Backlog>(1 << 20), clock);
  log.set_identity(alice());
  log.set_target("db1.int", Endpoint{"10.0.0.5", 22}, "ubuntu");
  ChannelRecording rec(log, 0, clock, nullptr);
  ChannelHeader h;
  h.kind = ChannelKind::kShell;
  rec.start(h);
  std::string big;
  for (int i = 0; i < 3000; ++i) big += "line " + std::to_string(i) + " \"quoted\" \x01\r\n";
  rec.from_target(big, false);
  rec.finish();
  std::string replayed;
  size_t output_lines = 0;
  for (const auto& line : sink.lines) {
    CHECK(line.size() <= opts.max_line);
    json j = json::parse(line);
    CHECK(canonical_dump(j) == line);
    if (j["event"]["action"] != "asciicast.output") continue;
    ++output_lines;
    CHECK(j["message"] == j["asciicast"]["event"][2]);
    replayed += j["asciicast"]["event"][2].get<std::string>();
  }
  CHECK(output_lines > 10);
  CHECK(replayed == big);
}
