// The decompressor (ISA-L's gzip, zstd) on the shapes log stores hand over, and list and commands
// reading plain, gzip and zstd inputs through InputChunks to the same answers. Compressed data is
// made by the real gzip(1) and zstd(1).
#include "player/decompressor.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "player/catalog.h"
#include "player/commands.h"
#include "player/input_chunks.h"
#include "player/log_reader.h"
#include "tests/player/temp_file.h"

namespace castgate::player {
namespace {

using castgate::player::testing::TempFile;

// `text` through `tool` (gzip -c, zstd -q -c), as a file named `text` would be compressed.
std::string compressed(const std::string& tool, const std::string& text) {
  TempFile in(text), out;
  REQUIRE(std::system((tool + " " + in.path + " > " + out.path).c_str()) == 0);
  return out.bytes();
}
std::string gzipped(const std::string& text) {
  return compressed("gzip -6 -c", text);
}
std::string zstded(const std::string& text) {
  return compressed("zstd -q -c", text);
}

struct Decompressed {
  std::string text;
  std::string warning;
};

// Everything `data` decompresses to, read `room` bytes at a time.
Decompressed decompress(const std::string& data, size_t room = 1 << 16,
                        size_t limit = size_t{1} << 30) {
  auto d = Decompressor::open(data, "test.gz", limit);
  REQUIRE(d);
  Decompressed r;
  std::string buf(room, '\0');
  while (size_t n = d->read(buf.data(), buf.size())) r.text.append(buf.data(), n);
  CHECK(d->produced() == r.text.size());
  r.warning = d->warning();
  return r;
}

// `prefix` and `n` (GCC 12 at -O3 warns wrongly about "literal" + std::string).
std::string numbered(std::string prefix, size_t n) {
  return prefix += std::to_string(n);
}

std::string log_text(size_t lines) {
  std::string text;
  for (size_t i = 0; i < lines; ++i)
    text += numbered("{\"@timestamp\":\"2026-11-30T00:00:00Z\",\"castgate\":{\"seq\":", i) +
            numbered("},\"message\":\"line ", i * 7919 % 10007) + "\"}\n";
  return text;
}

}  // namespace

TEST_CASE("gzip: one member, read in any piece size, the same bytes") {
  std::string text = log_text(20000);
  std::string gz = gzipped(text);
  CHECK(compression_of(gz) == Compression::kGzip);
  for (size_t room : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
    auto r = decompress(gz, room);
    CHECK(r.text == text);
    CHECK(r.warning.empty());
  }
}

TEST_CASE("gzip: a header naming the file, and several members (Fluent Bit appends)") {
  std::string a = log_text(3000), b = "{\"b\":1}\n";
  std::string gz = gzipped(a);
  REQUIRE((static_cast<unsigned char>(gz[3]) & 0x08) != 0);  // FNAME: gzip(1) stored the name
  auto r = decompress(gz + gzipped(b) + gzipped(""));
  CHECK(r.text == a + b);
  CHECK(r.warning.empty());
}

TEST_CASE("gzip: padding after whole members is kept apart, with a warning") {
  std::string text = log_text(1000);
  auto r = decompress(gzipped(text) + std::string(512, '\0'));
  CHECK(r.text == text);
  CHECK(r.warning.find("followed by other bytes") != std::string::npos);
  CHECK(r.warning.find(numbered("reading the ", text.size()) + " bytes") != std::string::npos);
  // One stray byte after a member: a header cut short, the same warning.
  CHECK(decompress(gzipped(text) + "x").text == text);
}

TEST_CASE("gzip: a file cut short is read as far as it goes, with a warning") {
  std::string text = log_text(20000);
  std::string gz = gzipped(text);
  for (size_t keep : {gz.size() * 2 / 3, size_t{12}}) {
    auto r = decompress(gz.substr(0, keep));
    CHECK(text.compare(0, r.text.size(), r.text) == 0);
    CHECK(r.text.size() < text.size());
    CHECK(r.warning.find("ends early") != std::string::npos);
  }
  // Only the trailer's last byte missing: every byte of the text, and still the warning.
  auto r = decompress(gz.substr(0, gz.size() - 1));
  CHECK(r.text == text);
  CHECK_FALSE(r.warning.empty());
}

TEST_CASE("gzip: data that is not gzip after all is an error, not an empty file") {
  std::string bad = std::string("\x1f\x8b", 2) + std::string(64, '\0');
  CHECK_THROWS_WITH_AS(decompress(bad), doctest::Contains("test.gz: not valid gzip data"),
                       std::runtime_error);
  std::string gz = gzipped(log_text(1000));
  gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0x55);  // damaged inside a member
  CHECK_THROWS_WITH_AS(decompress(gz), doctest::Contains("not valid gzip data"),
                       std::runtime_error);
  CHECK(compression_of("plain text\n") == Compression::kNone);
  CHECK(Decompressor::open("plain text\n", "x") == nullptr);
}

TEST_CASE("gzip: a header with reserved flags set is refused as gzip(1) refuses it") {
  std::string first = gzipped("first\n"), second = gzipped("second\n");
  std::string reserved = second;
  reserved[3] = static_cast<char>(reserved[3] | 0xe0);
  CHECK_THROWS_WITH_AS(decompress(reserved), doctest::Contains("reserved header flags set"),
                       std::runtime_error);
  // After a whole member: kept apart like padding, with the warning.
  auto r = decompress(first + reserved);
  CHECK(r.text == "first\n");
  CHECK(r.warning.find("ends early or is followed by other bytes") != std::string::npos);
  CHECK(decompress(first + second).text == "first\nsecond\n");
}

TEST_CASE("gzip and zstd: a decompression bomb is refused") {
  std::string zeros(1 << 20, '\0');
  CHECK_THROWS_WITH_AS(decompress(gzipped(zeros), 1 << 16, 100000),
                       doctest::Contains("decompresses to more than 100000 bytes"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(decompress(zstded(zeros), 1 << 16, 100000),
                       doctest::Contains("a decompression bomb"), std::runtime_error);
  CHECK(decompressed_limit(1000) == size_t{1} << 30);
  CHECK(decompressed_limit(size_t{1} << 30) == size_t{16} << 30);
}

TEST_CASE("gzip and zstd: empty data, an empty file") {
  for (const auto& c : {gzipped(""), zstded("")}) {
    auto r = decompress(c);
    CHECK(r.text.empty());
    CHECK(r.warning.empty());
  }
  TempFile empty;
  MappedFile f(empty.path);
  CHECK(f.data().empty());
  CHECK(std::string(f.compression()).empty());
}

TEST_CASE("zstd: frames, padding and a cut") {
  std::string a = log_text(5000), b = log_text(3);
  std::string zst = zstded(a);
  CHECK(compression_of(zst) == Compression::kZstd);
  auto r = decompress(zst + zstded(b));
  CHECK(r.text == a + b);
  CHECK(r.warning.empty());
  auto padded = decompress(zst + std::string(100, '\0'));
  CHECK(padded.text == a);
  CHECK_FALSE(padded.warning.empty());
  auto cut = decompress(zst.substr(0, zst.size() / 2));
  CHECK(a.compare(0, cut.text.size(), cut.text) == 0);
  CHECK(cut.warning.find("the zstd data ends early") != std::string::npos);
}

namespace {

// Sessions, commands, alerts and channel ends of many interleaved sessions, enough to make
// several pieces, with a line of most of a piece (carried across pieces) and lines that are not
// castgate's.
std::string interleaved_log() {
  auto line = [](size_t session, uint64_t seq, const std::string& action, nlohmann::json more) {
    nlohmann::json j = {{"@timestamp", numbered("2026-11-30T10:", 10 + seq) + ":00.000000Z"},
                        {"castgate", {{"session", numbered("s", session)}, {"seq", seq}}},
                        {"event", {{"action", action}}}};
    j.merge_patch(more);
    return j.dump() + "\n";
  };
  std::string text;
  constexpr size_t kSessions = 4000;
  for (size_t s = 0; s < kSessions; ++s)
    text += line(s, 0, "session.start",
                 {{"user", {{"email", numbered("u", s % 7) + "@example.com"}}},
                  {"destination", {{"address", numbered("db", s % 3)}}}});
  text += "kernel: not castgate's\n\n";
  for (size_t s = 0; s < kSessions; ++s) {
    text += line(s, 1, "command",
                 {{"castgate", {{"channel", 0}, {"command_source", "exec"}}},
                  {"process", {{"command_line", numbered("make check ", s)}}}});
    text += line(s, 2, "alert", {{"castgate", {{"channel", 0}}}, {"rule", {{"name", "r"}}}});
    if (s == kSessions / 2)
      text += line(s, 3, "output", {{"message", std::string(900 << 10, 'x')}});
    text += line(s, 4, "channel.end",
                 {{"castgate", {{"channel", 0}}}, {"process", {{"exit_code", int(s % 4)}}}});
  }
  for (size_t s = 0; s < kSessions; s += 2)
    text += line(s, 5, "session.end", {{"castgate", {{"end_reason", "closed"}}}});
  std::string cut = line(1, 9, "session.end", nlohmann::json::object());
  text += cut.substr(0, cut.size() - 3);  // cut short, and the last line
  return text;
}

struct Answers {
  std::string sessions, commands;
  size_t unreadable = 0, lines = 0, others = 0, first_other = 0;
  bool operator==(const Answers&) const = default;
};

std::string sessions_of(const Catalog& catalog) {
  CatalogFilter all;
  all.include_denied = true;
  std::string out;
  for (const auto& s : catalog.sessions(all))
    out += s.session + " " + s.start + " " + s.end + " " + s.user_email + " " + s.target + " " +
           s.end_reason + "\n";
  return out;
}

std::string commands_of(const CommandIndex& index) {
  std::string out;
  for (const auto& r : index.rows({}))
    out += r.time + " " + r.session + " " + r.command + " " +
           std::to_string(r.exit_code.value_or(-1)) + " " + std::to_string(r.alerts.size()) + " " +
           r.who.user_email + "\n";
  return out;
}

Answers through_chunks(const std::vector<std::string>& paths, unsigned threads) {
  Catalog catalog;
  CommandIndex index;
  LineCensus census;
  InputChunks(paths, threads)
      .read(
          [&](std::string_view text) {
            census.add(text);
            catalog.add_text(text);
            index.add_text(text);
          },
          [](size_t, const std::string& warning) { CHECK(warning.empty()); });
  return {sessions_of(catalog), commands_of(index), catalog.unreadable(),
          census.lines,         census.others(),    census.first_other};
}

}  // namespace

TEST_CASE("list and commands: the same answers from plain, gzip and zstd inputs") {
  std::string text = interleaved_log();
  TempFile plain(text),
      gz(gzipped(text.substr(0, text.size() / 3)) + gzipped(text.substr(text.size() / 3))),
      zst(zstded(text));
  Answers expected;
  {
    MappedFile f(plain.path);
    Catalog catalog;
    CommandIndex index;
    catalog.add_file(f);
    index.add_file(f);
    auto c = census(f);
    expected = {sessions_of(catalog), commands_of(index), catalog.unreadable(), c.lines,
                c.others(),           c.first_other};
  }
  REQUIRE(expected.sessions.size() > 100000);
  REQUIRE(expected.commands.size() > 100000);
  CHECK(expected.unreadable == 1);
  CHECK(expected.others == 2);
  for (const auto& path : {plain.path, gz.path, zst.path}) {
    CAPTURE(path);
    CHECK(through_chunks({path}, 1) == expected);
    CHECK(through_chunks({path}, 2) == expected);
    MappedFile whole(path);  // the temporary-file path, for verify and export
    CHECK(whole.data() == text);
  }
  // Several inputs decompressed at once read in order: the file numbering of each is its own.
  Answers parts = through_chunks({gz.path, zst.path, plain.path}, 2);
  CHECK(parts.lines == 3 * expected.lines);
}

TEST_CASE("InputChunks: an error is raised in the input's turn, after the inputs before it") {
  std::string text = log_text(10);
  TempFile good(gzipped(text)), bad(std::string("\x1f\x8b", 2) + std::string(64, '\0'));
  std::vector<size_t> done;
  InputChunks chunks({good.path, bad.path, good.path}, 2);
  CHECK_THROWS_WITH_AS(chunks.read([](std::string_view) {},
                                   [&](size_t i, const std::string&) { done.push_back(i); }),
                       doctest::Contains("not valid gzip data"), std::runtime_error);
  CHECK(done == std::vector<size_t>{0});
  CHECK_THROWS_WITH_AS(InputChunks({"/nonexistent/x.gz"})
                           .read([](std::string_view) {}, [](size_t, const std::string&) {}),
                       doctest::Contains("cannot open"), std::runtime_error);
}

TEST_CASE(
    "InputChunks: a compressed line longer than 1 MiB is not held, it counts as not an event") {
  const std::string before = R"({"castgate":{"session":"s-1","seq":0},"event":{"action":"a"}})"
                             "\n",
                    after = R"({"castgate":{"session":"s-2","seq":0},"event":{"action":"b"}})"
                            "\n";
  for (size_t length : {size_t{2} << 20, size_t{5} << 20, size_t{9} << 20}) {
    CAPTURE(length);
    std::string text = before + std::string(length, 'A') + "\n" + after + std::string(length, 'B');
    TempFile gz(gzipped(text));
    std::string seen;
    size_t pieces = 0;
    InputChunks({gz.path}, 1)
        .read(
            [&](std::string_view piece) {
              seen += piece;
              ++pieces;
              CHECK(piece.size() <= (size_t{2} << 20));
            },
            [](size_t, const std::string& warning) { CHECK(warning.empty()); });
    const std::string skipped = "castgate-player: a line longer than 1 MiB, not read\n";
    bool as_expected = seen == before + skipped + after + skipped;  // not printed: megabytes
    CHECK(as_expected);
    LineCensus census;
    census.add(seen);
    CHECK(census.lines == 4);
    CHECK(census.others() == 2);
  }
}

TEST_CASE("InputChunks: standard input is read once, by the reader, in its turn") {
  // A bad input before "-" is reported without reading stdin (stdin here is the test runner's:
  // reading it would block or consume it).
  TempFile bad(std::string("\x1f\x8b\x08\x00garbage-not-deflate", 22));
  bool threw = false;
  try {
    InputChunks({bad.path, "-"}, 2)
        .read([](std::string_view) {}, [](size_t, const std::string&) {});
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()).find("not valid gzip data") != std::string::npos;
  }
  CHECK(threw);
}

}  // namespace castgate::player
