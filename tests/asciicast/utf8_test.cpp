#include "asciicast/utf8.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "asciicast/json_text.h"
#include "common/crypto.h"

using namespace castgate::asciicast;

namespace {
std::string sanitize(std::string_view in) {
  Utf8Sanitizer z;
  std::string out;
  z.feed(in, out);
  z.flush(out);
  return out;
}
const std::string kFFFD = "\xef\xbf\xbd";
}  // namespace

TEST_CASE("valid UTF-8 passes unchanged, however it is split") {
  std::string text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 end";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Sanitizer z;
    std::string out;
    z.feed(std::string_view(text).substr(0, cut), out);
    z.feed(std::string_view(text).substr(cut), out);
    z.flush(out);
    CHECK(out == text);
  }
  // One byte at a time.
  Utf8Sanitizer z;
  std::string out;
  for (char c : text) z.feed(std::string_view(&c, 1), out);
  CHECK(out == text);
}

TEST_CASE("invalid bytes become U+FFFD, one per maximal invalid subpart") {
  CHECK(sanitize("\xff") == kFFFD);
  CHECK(sanitize("a\x80z") == "a" + kFFFD + "z");
  CHECK(sanitize("\xc0\xaf") == kFFFD + kFFFD);                          // overlong lead byte
  CHECK(sanitize("\xe0\x80\xaf") == kFFFD + kFFFD + kFFFD);              // overlong 3-byte
  CHECK(sanitize("\xed\xa0\x80") == kFFFD + kFFFD + kFFFD);              // surrogate
  CHECK(sanitize("\xf4\x90\x80\x80") == kFFFD + kFFFD + kFFFD + kFFFD);  // > U+10FFFF
  CHECK(sanitize("\xe2\x82") == kFFFD);                                  // truncated at the end
  CHECK(sanitize("\xe2\x82x") == kFFFD + "x");                           // broken in the middle
  CHECK(sanitize("\xf0\x9f\x98") == kFFFD);
}

TEST_CASE("random bytes always give valid UTF-8") {
  for (int i = 0; i < 200; ++i) {
    std::string data = castgate::random_bytes(1 + static_cast<size_t>(i) * 7);
    std::string out = sanitize(data);
    CHECK(utf8_valid(out));
  }
}

TEST_CASE("prefix cut never splits a character") {
  std::string s =
      "ab\xe2\x82\xac"
      "cd";
  CHECK(utf8_prefix_at_most(s, 2) == 2);
  CHECK(utf8_prefix_at_most(s, 3) == 2);
  CHECK(utf8_prefix_at_most(s, 4) == 2);
  CHECK(utf8_prefix_at_most(s, 5) == 5);
  CHECK(json_escaped_prefix("a\nb", 2) == 1);  // "\n" takes two bytes escaped
  CHECK(json_escaped_prefix("a\x01"
                            "b",
                            6) == 1);
  CHECK(json_escaped_prefix("a\x01"
                            "b",
                            7) == 2);
}

TEST_CASE("chunked sanitising gives the same text as one pass, on long inputs too (SIMD path)") {
  std::string text;
  for (int i = 0; i < 20; ++i)
    text += "line \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end of line\r\n";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Sanitizer z;
    std::string out;
    z.feed(std::string_view(text).substr(0, cut), out);
    z.feed(std::string_view(text).substr(cut), out);
    z.flush(out);
    REQUIRE(out == text);
  }
  for (int round = 0; round < 50; ++round) {
    std::string data = castgate::random_bytes(300);
    if (round % 2) data = text.substr(0, 100) + data + text;  // mixed text and garbage
    std::string whole = sanitize(data);
    Utf8Sanitizer z;
    std::string out;
    size_t pos = 0;
    size_t step = 1 + static_cast<size_t>(round) * 7;
    while (pos < data.size()) {
      z.feed(std::string_view(data).substr(pos, step), out);
      pos += step;
    }
    z.flush(out);
    CHECK(out == whole);
    CHECK(utf8_valid(out));
  }
}

TEST_CASE("sanitize() gives what feed() appends, valid text without a copy") {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "line \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end\r\n";
  // Valid, long enough for the SIMD path: the input itself, up to a character the cut splits.
  for (size_t cut = 64; cut <= text.size(); ++cut) {
    Utf8Sanitizer z;
    std::string scratch, out;
    std::string_view in = std::string_view(text).substr(0, cut);
    std::string_view got = z.sanitize(in, scratch);
    CHECK(got.data() == in.data());
    out.append(got);
    out.append(z.sanitize(std::string_view(text).substr(cut), scratch));
    z.flush(out);
    REQUIRE(out == text);
  }
  // Anything, however chunked: the same as feed().
  for (int round = 0; round < 50; ++round) {
    std::string data = castgate::random_bytes(300);
    if (round % 2) data = text.substr(0, 100) + data + text;
    if (round % 5 == 0) data = text + "\xe2\x82";  // valid, then an incomplete last character
    if (round % 5 == 1) data = text + "\xc0";      // valid, then a lead byte that never is one
    Utf8Sanitizer fed, viewed;
    std::string by_feed, by_view, scratch;
    size_t step = 1 + static_cast<size_t>(round) * 13;
    for (size_t pos = 0; pos < data.size(); pos += step) {
      std::string_view chunk = std::string_view(data).substr(pos, step);
      fed.feed(chunk, by_feed);
      by_view.append(viewed.sanitize(chunk, scratch));
    }
    fed.flush(by_feed);
    viewed.flush(by_view);
    CHECK(by_view == by_feed);
    CHECK(utf8_valid(by_view));
  }
}

TEST_CASE("bounded JSON strings: the longest prefix that fits, escaped as nlohmann escapes it") {
  std::string pool = "ab\"\\\n\t\x01\x1f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80zz";
  std::srand(7);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    size_t n = static_cast<size_t>(std::rand() % 200);
    if (round % 3 == 0) n += 2000;  // long plain runs, over the SIMD width
    while (text.size() < n) {
      if (std::rand() % 4 == 0) {
        size_t at = static_cast<size_t>(std::rand()) % pool.size();
        while (at > 0 && (static_cast<unsigned char>(pool[at]) & 0xc0) == 0x80) --at;
        size_t len = 1;
        while (at + len < pool.size() &&
               (static_cast<unsigned char>(pool[at + len]) & 0xc0) == 0x80)
          ++len;
        text += pool.substr(at, len);
      } else {
        text += static_cast<char>('a' + std::rand() % 26);
      }
    }
    size_t budget = static_cast<size_t>(std::rand() % 300);
    if (round % 3 == 0) budget += 1500;
    std::string out = "prefix";
    size_t taken = append_json_string_bounded(out, text, budget);
    REQUIRE(out.compare(0, 6, "prefix") == 0);
    std::string escaped = out.substr(6);
    size_t want = json_escaped_prefix(text, budget);
    if (want == 0 && !text.empty()) {
      CHECK(taken > 0);  // one character even over budget, to make progress
    } else {
      CHECK(taken == want);
      CHECK(escaped.size() <= budget + 2);
    }
    REQUIRE(escaped == nlohmann::json(text.substr(0, taken)).dump());
  }
}
