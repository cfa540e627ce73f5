// The decompressor (ISA-L's gzip, zstd) on the shapes log stores hand over. Compressed data is
// made by the real gzip(1) and zstd(1).
#include "player/decompressor.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "player/log_reader.h"

namespace castgate::player {
namespace {

// A temporary file, removed when the test ends.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& bytes = "") {
    char name[] = "/tmp/castgate-decompress-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempPath() { std::remove(path.c_str()); }
  std::string bytes() const {
    std::ostringstream s;
    s << std::ifstream(path, std::ios::binary).rdbuf();
    return s.str();
  }
};

// `text` through `tool` (gzip -c, zstd -q -c), as a file named `text` would be compressed.
std::string compressed(const std::string& tool, const std::string& text) {
  TempPath in(text), out;
  REQUIRE(std::system((tool + " " + in.path + " > " + out.path).c_str()) == 0);
  return out.bytes();
}
std::string gzipped(const std::string& text) {
  return compressed("gzip -6 -c", text);
}
std::string zstded(const std::string& text) {
  return compressed("zstd -q -c", text);
}

struct Result {
  std::string text;
  std::string warning;
};

// Everything `data` decompresses to, read `room` bytes at a time.
Result decompress(const std::string& data, size_t room = 1 << 16, size_t limit = size_t{1} << 30) {
  auto d = Decompressor::open(data, "test.gz", limit);
  REQUIRE(d);
  Result r;
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
  TempPath empty;
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

}  // namespace castgate::player
