#include "asciicast/utf8.h"

#include <doctest/doctest.h>

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
