#include "asciicast/stream_summary.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "asciicast/upload_sink.h"
#include "asciicast/utf8.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/asciicast/memory_sink.h"
#include "tests/asciicast/recorded_channel.h"

using namespace castgate;
using namespace castgate::asciicast;
using nlohmann::json;
using namespace std::literals;

namespace {

using castgate::asciicast::testing::MemorySink;

std::string random_bytes_seeded(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

std::string hex_sha256(std::string_view data) {
  auto d = sha256(data);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// One exec channel without a pty recorded into memory.
struct Recorded : castgate::asciicast::testing::RecordedChannel {
  explicit Recorded(bool summarize, std::string command = "cat backup.tar.gz")
      : RecordedChannel(summarize, std::move(command)) {}
};

}  // namespace

TEST_CASE("text is text, binary data is not") {
  CHECK_FALSE(is_binary_chunk(""));
  CHECK_FALSE(is_binary_chunk("total 0\ndrwxr-xr-x 2 alice alice 4096 Mar  3 10:00 .\n"));
  CHECK_FALSE(is_binary_chunk("\x1b[01;34mdir\x1b[0m\tfile\r\n\a\b\f"));
  CHECK_FALSE(is_binary_chunk("Grüße, 日本語, emoji 😀 and a cut character \xe2\x82"));
  // Text interleaved with NULs (UTF-16LE) stays text: a shell ignores NULs in a script.
  CHECK_FALSE(is_binary_chunk("r\0m\0 \0-\0r\0f\0 \0/\0t\0m\0p\0"sv));
  // A stray control byte now and then is still text.
  std::string mostly(200, 'a');
  mostly[100] = '\x01';
  CHECK_FALSE(is_binary_chunk(mostly));

  CHECK(is_binary_chunk(std::string(4096, '\0')));
  CHECK(is_binary_chunk("\0\0"sv));
  CHECK(is_binary_chunk(random_bytes_seeded(4096, 1)));
  CHECK(is_binary_chunk(random_bytes_seeded(64, 2)));
  CHECK_FALSE(is_binary_chunk("\x98\x80\xbf" + std::string(61, 'x')));    // a cut character's rest
  CHECK(is_binary_chunk("\x98\x80\xbf\xbf\xbf" + std::string(30, 'x')));  // more than a rest
  std::string sparse(4096, '\0');
  sparse.replace(100, 30, "some text in a sparse file....");
  CHECK(is_binary_chunk(sparse));
  CHECK(is_binary_chunk("\xff\xfe\xfd\xfc invalid UTF-8 \xc0\x80\xed\xa0\x80"));
  std::string controls(64, 'x');
  for (size_t i = 0; i < controls.size(); i += 8) controls[i] = '\x02';
  CHECK(is_binary_chunk(controls));
}

TEST_CASE("strings of a binary run: long runs, NULs skipped, short lines kept") {
  StringsExtractor s;
  s.feed(
      "\x01\x02"
      "abc"
      "\x03"
      "a longer string here"
      "\xff"sv);
  s.feed("r\0m\0\0 -rf /srv/data\x01"sv);
  s.feed("\x05pwd\n\x06id\n");
  s.feed("split across");
  s.feed(" chunks\x01");
  s.feed(std::string(3000, 'y'));
  s.flush();
  std::string found = s.take();
  CHECK(found.find("a longer string here\n") != std::string::npos);
  CHECK(found.find("abc\n") == std::string::npos);
  CHECK(found.find("rm -rf /srv/data\n") != std::string::npos);
  CHECK(found.find("pwd\n") != std::string::npos);
  CHECK(found.find("id\n") == std::string::npos);
  CHECK(found.find("split across chunks\n") != std::string::npos);
  CHECK(found.find(std::string(StringsExtractor::kMaxString, 'y') + "\n") != std::string::npos);
  CHECK(s.pending() == 0);
  // Random bytes give little, zeros nothing.
  s.feed(random_bytes_seeded(1 << 20, 3));
  s.flush();
  CHECK(s.take().size() < (1 << 20) / 250);
  s.feed(std::string(1 << 16, '\0'));
  s.flush();
  CHECK(s.take().empty());
}

namespace {

// The definitions of is_binary_chunk and StringsExtractor byte by byte, without their fast paths:
// what the fast paths must agree with on any input.
bool binary_by_definition(std::string_view chunk) {
  size_t nul = 0, odd = 0, i = 0;
  while (i < chunk.size() && i < 3 && (static_cast<uint8_t>(chunk[i]) & 0xc0) == 0x80) ++i;
  while (i < chunk.size()) {
    auto b = static_cast<uint8_t>(chunk[i]);
    size_t len = 1;
    if (b == 0)
      ++nul;
    else if (b == 0x7f || (b < 0x20 && "\n\r\t\f\b\a\x1b"sv.find(static_cast<char>(b)) ==
                                           std::string_view::npos))
      ++odd;
    else if (b >= 0x80 && (len = utf8_sequence_length(chunk.substr(i), true)) == 0)
      ++odd, len = 1;
    i += len;
  }
  size_t rest = chunk.size() - nul;
  return nul > rest || odd * 32 > rest;
}

std::string strings_by_definition(std::string_view data) {
  std::string found, run;
  auto keep = [&] { found += run + "\n"; };
  for (char ch : data) {
    auto b = static_cast<uint8_t>(ch);
    if (b == 0) continue;
    if (ch == '\n' && !run.empty() && run.back() == '\\') {
      run.pop_back();
      continue;
    }
    if ((b >= 0x20 && b < 0x7f) || ch == '\t') {
      run += ch;
      if (run.size() == StringsExtractor::kMaxString) keep(), run.clear();
      continue;
    }
    if (run.size() >= StringsExtractor::kMinString ||
        (ch == '\n' && run.size() >= StringsExtractor::kMinLine))
      keep();
    run.clear();
  }
  if (run.size() >= StringsExtractor::kMinString) keep();
  return found;
}

// Data that visits every case: random bytes, zeros, printable runs around kMinString, lines,
// backslash-newlines, UTF-8 characters (some cut), control bytes.
std::string mixed_data(std::mt19937& gen, size_t n) {
  std::string s;
  auto pick = [&](size_t k) { return static_cast<size_t>(gen() % k); };
  while (s.size() < n) {
    switch (pick(8)) {
      case 0:
        for (size_t k = pick(200); k > 0; --k) s += static_cast<char>(gen());
        break;
      case 1:
        s.append(pick(100), '\0');
        break;
      case 2:
        for (size_t k = pick(12); k > 0; --k) s += static_cast<char>(0x20 + pick(95));
        break;
      case 3:
        s += pick(2) ? "\\\n" : "\n";
        break;
      case 4:
        s += "\xe6\x97\xa5\xe2\x82"sv.substr(0, 1 + pick(5));
        break;
      case 5:
        s += static_cast<char>(pick(0x20));
        break;
      case 6:
        for (size_t k = pick(40); k > 0; --k) s += pick(3) ? 'x' : '\0';
        break;
      default:
        s.append(pick(2000), static_cast<char>(0x20 + pick(95)));
    }
  }
  s.resize(n);
  return s;
}

}  // namespace

TEST_CASE("the fast paths of the binary judgement and of strings agree with their definitions") {
  std::mt19937 gen(20261201);
  for (int round = 0; round < 3000; ++round) {
    std::string data = mixed_data(gen, 1 + gen() % 6000);
    CAPTURE(round);
    CHECK(is_binary_chunk(data) == binary_by_definition(data));
    // Fed in pieces of any size: the run in progress is carried across them.
    StringsExtractor s;
    for (size_t at = 0; at < data.size();) {
      size_t piece = std::min<size_t>(data.size() - at, 1 + gen() % 300);
      s.feed(std::string_view(data).substr(at, piece));
      at += piece;
    }
    s.flush();
    CHECK(s.take() == strings_by_definition(data));
  }
  // Mostly random or mostly zeros with a little text: decided by the quick count or the exact one.
  for (int round = 0; round < 200; ++round) {
    std::string data = random_bytes_seeded(256 + gen() % 40000, static_cast<unsigned>(round));
    for (auto& c : data)
      if (gen() % 4) c = static_cast<char>(round % 2 ? 'a' + gen() % 26 : 0);
    CHECK(is_binary_chunk(data) == binary_by_definition(data));
  }
}

TEST_CASE("a binary download is a stream summary with the digest of its bytes") {
  Recorded r(true);
  std::string file = random_bytes_seeded(3 << 20, 4);
  for (size_t at = 0; at < file.size(); at += 32768)
    r.rec->from_target(std::string_view(file).substr(at, 32768), false);
  r.rec->from_target("done\n", false);
  r.rec->finish();

  auto ends = r.events("stream.end");
  REQUIRE(ends.size() == 1);
  const auto& s = ends[0]["castgate"]["stream"];
  CHECK(s["direction"] == "output");
  CHECK(s["offset"] == 0);
  CHECK_FALSE(s.contains("strings"));  // they went before it, in progress events
  CHECK(s["bytes"] == file.size());
  CHECK(s["sha256"] == hex_sha256(file));
  CHECK(ends[0]["file"]["hash"]["sha256"] == hex_sha256(file));
  CHECK(ends[0]["file"]["size"] == file.size());
  // The text after the run is recorded in full; the run is not, beyond its strings.
  CHECK(r.recorded("asciicast.output") == "done\n");
  CHECK(r.bytes() < file.size() / 100);  // the record of a binary transfer: under 1%
  auto markers = r.recorded("asciicast.marker");
  CHECK(markers.find("binary output: 3.0 MiB, sha256 " + hex_sha256(file)) != std::string::npos);
  auto header = r.events("asciicast.header");
  REQUIRE(header.size() == 1);
  CHECK(header[0]["castgate"]["binary_streams"] == "summary");
}

TEST_CASE("text turning binary and back: each run summarised, text in full, offsets exact") {
  Recorded r(true, "sh -c 'echo start; cat blob; echo end'");
  // The rest of a character cut by the read before is text, not the start of a run.
  r.rec->from_target("\xf0\x9f", false);
  r.rec->from_target("\x98\x80" + std::string(70, 'x') + "\n", false);
  std::string zeros(100000, '\0');
  std::string blob = random_bytes_seeded(50000, 5);
  r.rec->from_target("start\n", false);
  r.rec->from_target(zeros, false);
  r.clock.advance(std::chrono::seconds(11));
  r.rec->from_target(blob, false);  // the same run: binary follows binary
  r.rec->from_target("middle\n", false);
  r.rec->from_target(blob, false);
  r.rec->from_target("end\n", false);
  r.rec->finish();
  auto ends = r.events("stream.end");
  REQUIRE(ends.size() == 2);
  const size_t before = 4 + 71 + 6;
  CHECK(ends[0]["castgate"]["stream"]["offset"] == before);
  CHECK(ends[0]["castgate"]["stream"]["bytes"] == zeros.size() + blob.size());
  CHECK(ends[0]["castgate"]["stream"]["sha256"] == hex_sha256(zeros + blob));
  CHECK(ends[0]["castgate"]["stream"]["seconds"].get<double>() >= 11.0);
  CHECK(ends[1]["castgate"]["stream"]["offset"] == before + zeros.size() + blob.size() + 7);
  CHECK(ends[1]["castgate"]["stream"]["sha256"] == hex_sha256(blob));
  CHECK(r.recorded("asciicast.output") ==
        "\xf0\x9f\x98\x80" + std::string(70, 'x') + "\nstart\nmiddle\nend\n");
  // Ten seconds into the first run, a progress event says how far it is.
  auto progress = r.events("stream.progress");
  REQUIRE_FALSE(progress.empty());
  CHECK(progress[0]["castgate"]["stream"]["bytes"] == zeros.size() + blob.size());
}

TEST_CASE("input is recorded in full, binary or not: it is what the target runs") {
  Recorded r(true, "bash");
  std::string input = random_bytes_seeded(8192, 6);
  // A command a shell runs, hidden in a form no strings(1) would find (one character per line,
  // joined by backslash-newlines), among binary bytes.
  auto hidden = "\nc\\\nu\\\nr\\\nl\\\n \\\ne\\\nv\\\ni\\\nl\n"sv;
  input.replace(4000, hidden.size(), hidden);
  r.rec->from_user(input);
  r.rec->finish();
  CHECK(r.events("stream.end").empty());
  CHECK(r.events("stream.progress").empty());
  std::string recorded = r.recorded("asciicast.input");
  CHECK(recorded.find(std::string(hidden)) != std::string::npos);
}

TEST_CASE("policy full, a terminal, stderr and SCP keep today's recording") {
  std::string blob = random_bytes_seeded(20000, 7);
  {
    Recorded r(false);
    r.rec->from_target(blob, false);
    r.rec->finish();
    CHECK(r.events("stream.start").empty());
    CHECK(r.recorded("asciicast.output").size() >= blob.size());
    CHECK_FALSE(r.events("asciicast.header")[0]["castgate"].contains("binary_streams"));
  }
  {
    Recorded r(true);
    r.rec->from_target(blob, true);  // stderr
    r.rec->finish();
    CHECK(r.events("stream.start").empty());
    CHECK(r.recorded("asciicast.stderr").size() >= blob.size());
  }
  {
    MemorySink sink;
    ManualClock clock;
    SessionLogOptions opts;
    SessionLog log(opts, "s", Endpoint{"192.0.2.7", 1}, sink, std::make_shared<Backlog>(1 << 26),
                   clock);
    ChannelRecording rec(log, 0, clock, nullptr);
    ChannelHeader h;
    h.kind = ChannelKind::kExec;
    h.command = "cat blob";
    h.pty = true;
    h.summarize_binary = true;
    rec.start(h);
    rec.from_target(blob, false);
    rec.finish();
    for (const auto& l : sink.lines) CHECK(l.find("\"stream.") == std::string::npos);
  }
}

TEST_CASE("many small switches between text and binary stay bounded") {
  // A user alternating tiny text and binary chunks gets at most four lines per switch (the text,
  // the run's strings if any, its end, its marker): the record grows with the chunks.
  Recorded r(true, "cat");
  std::string blob = random_bytes_seeded(64, 8);
  for (int i = 0; i < 200; ++i) {
    r.rec->from_target("t\n", false);
    r.rec->from_target(blob, false);
  }
  r.rec->finish();
  CHECK(r.events("stream.end").size() == 200);
  CHECK(r.sink.lines.size() < 200 * 4 + 10);
  CHECK(r.events("stream.start").empty());
}

TEST_CASE("upload sinks are recognised strictly: only commands that write stdin to a file") {
  using castgate::asciicast::parse_upload_sink;
  struct Case {
    std::string_view exec;
    std::string_view program, path;
  };
  for (const Case& c : {Case{"cat > /tmp/x.bin", "cat", "/tmp/x.bin"},
                        Case{"cat >> backup.tar", "cat", "backup.tar"},
                        Case{"cat >out", "cat", "out"}, Case{"cat - > out", "cat", "out"},
                        Case{"dd of=/srv/disk.img bs=1M status=progress", "dd", "/srv/disk.img"},
                        Case{"tar x", "tar", "."}, Case{"tar xf - -C /srv/www", "tar", "/srv/www"},
                        Case{"tar -x -f - --directory=dst --no-same-owner", "tar", "dst"},
                        Case{"tar --extract --file=- -C d", "tar", "d"},
                        Case{"tar -xvpf - --no-same-owner", "tar", "."}}) {
    CAPTURE(c.exec);
    auto sink = parse_upload_sink(c.exec);
    REQUIRE(sink);
    CHECK(sink->program == c.program);
    CHECK(sink->path == c.path);
  }
  // Programs that run what they read, a second command, options that hand the data to another
  // program, destinations that are not files (bash's /dev/tcp, devices), shell syntax.
  for (std::string_view exec : {"bash",
                                "sh -c 'cat > x'",
                                "cat",
                                "cat x",
                                "cat > x; sh x",
                                "cat > x && sh x",
                                "cat > $X",
                                "cat > `id`",
                                "cat > x y",
                                "cat  > x",
                                "cat > /dev/tcp/10.0.0.1/6379",
                                "cat > //dev/tcp/a/1",
                                "cat > /proc/self/fd/1",
                                "cat > a/../../dev/tcp/h/1",
                                "cat > 'x'",
                                "cat > x*",
                                "cat | sh",
                                "dd",
                                "dd if=/etc/shadow of=x",
                                "dd of=x of=y",
                                "dd of=/dev/sda",
                                "dd of=x skip=1",
                                "tar c",
                                "tar xf archive.tar",
                                "tar x --to-command=sh",
                                "tar xI sh",
                                "tar x -I sh",
                                "tar x --use-compress-program=sh",
                                "tar x --checkpoint-action=exec=sh",
                                "tar x --info-script=sh",
                                "tar xf",
                                "tar xC",
                                "tar x member",
                                "tar x -C /dev",
                                "tar xf - -C",
                                "tar x --file=x.tar",
                                "cat > x\nsh",
                                "tee x",
                                "python3 -c 1"}) {
    CAPTURE(exec);
    CHECK_FALSE(parse_upload_sink(exec));
  }
}

TEST_CASE("a binary upload to a file sink is a stream summary with the digest of its bytes") {
  Recorded r(true, "cat > /srv/backup.bin");
  std::string blob = random_bytes_seeded(1 << 20, 11);
  r.rec->from_user("");
  for (size_t at = 0; at < blob.size(); at += 32768) r.rec->from_user(blob.substr(at, 32768));
  r.rec->from_target("done\n", false);
  r.rec->finish();
  auto ends = r.events("stream.end");
  REQUIRE(ends.size() == 1);
  CHECK(ends[0]["castgate"]["stream"]["direction"] == "input");
  CHECK(ends[0]["castgate"]["stream"]["offset"] == 0);
  CHECK(ends[0]["castgate"]["stream"]["bytes"] == blob.size());
  CHECK(ends[0]["file"]["hash"]["sha256"] == hex_sha256(blob));
  CHECK(r.recorded("asciicast.input").empty());
  CHECK(r.recorded("asciicast.output") == "done\n");
  CHECK(r.recorded("asciicast.marker").find("binary input: ") == 0);
  CHECK(r.bytes() < blob.size() / 50);
  auto files = r.events("file.transfer");
  REQUIRE(files.size() == 1);
  CHECK(files[0]["file"]["path"] == "/srv/backup.bin");
  CHECK(files[0]["file"]["size"] == blob.size());
  CHECK(files[0]["castgate"]["file"]["protocol"] == "exec");
  CHECK(files[0]["castgate"]["file"]["direction"] == "upload");
}

TEST_CASE("tar x: members listed, the archive summarised; what is not tar recorded in full") {
  std::ifstream in(std::string(CASTGATE_SOURCE_DIR) + "/tests/asciicast/data/transfers/gnu.tar",
                   std::ios::binary);
  std::string tar((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(tar.size() == 30720);
  {
    Recorded r(true, "tar xf - -C /srv");
    r.rec->from_user(tar);
    r.rec->finish();
    auto files = r.events("file.transfer");
    REQUIRE(files.size() >= 4);
    CHECK(files[0]["file"]["path"] == "/srv/.bashrc");
    CHECK(files[0]["castgate"]["file"]["protocol"] == "tar");
    CHECK(r.events("file.symlink").size() == 1);
    CHECK(r.events("file.error").empty());
    auto ends = r.events("stream.end");
    REQUIRE(ends.size() == 1);
    CHECK(ends[0]["file"]["hash"]["sha256"] == hex_sha256(tar));
    CHECK(r.recorded("asciicast.input").empty());
  }
  {
    // A valid first member, then a script where the next header should be.
    Recorded r(true, "tar xf - -C /srv");
    std::string hidden = "echo HIDDEN; " + random_bytes_seeded(4000, 13);
    r.rec->from_user(tar.substr(0, 1024));
    r.rec->from_user(hidden);
    r.rec->finish();
    auto errors = r.events("file.error");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["castgate"]["file"]["status"] == "not tar: header checksum does not match");
    CHECK(r.recorded("asciicast.input").find("echo HIDDEN; ") != std::string::npos);
  }
}

TEST_CASE("git push: the pack is summarised while the data is git, in full once it is not") {
  // A push's commands (pkt-lines, text), then binary: recorded in full before the follower has
  // seen the target's advertisement, summarised as the pack; data that is not git stops it.
  Recorded r(true, "git-receive-pack '/srv/r.git'");
  std::string blob = random_bytes_seeded(100000, 12);
  r.rec->from_user(blob);  // not git at all: the follower says so, the bytes are recorded
  r.rec->finish();
  CHECK(r.events("stream.end").empty());
  CHECK(r.events("file.error").size() == 1);
  CHECK_FALSE(r.recorded("asciicast.input").empty());
}
