#include "player/terminal_text.h"

#include <doctest/doctest.h>

namespace castgate::player {

TEST_CASE("terminal_safe escapes what a terminal would act on") {
  CHECK(terminal_safe("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07");
  CHECK(terminal_safe("\x1b[2Jevil") == "\\x1b[2Jevil");
  CHECK(terminal_safe(std::string("a\0b\r\n\t\x7f", 7)) == "a\\x00b\\x0d\\x0a\\x09\\x7f");
  // C1 controls, as UTF-8: U+009B is an 8-bit CSI, U+0085 a line break, U+0080 the first.
  CHECK(terminal_safe("\xc2\x9b"
                      "2J\xc2\x85\xc2\x80") == "\\u009b2J\\u0085\\u0080");
  // Bytes that are not UTF-8: lone, overlong, surrogate, beyond U+10FFFF, cut short.
  CHECK(terminal_safe("\xff\xfe") == "\\xff\\xfe");
  CHECK(terminal_safe("\xc0\x9b") == "\\xc0\\x9b");  // an overlong ESC-like sequence
  CHECK(terminal_safe("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(terminal_safe("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  CHECK(terminal_safe("ab\xe2\x82") == "ab\\xe2\\x82");
  // An escape cannot be faked with a backslash.
  CHECK(terminal_safe("\\x1b") == "\\\\x1b");
}

TEST_CASE("terminal_safe keeps readable text as it is") {
  CHECK(terminal_safe("alice@example.com") == "alice@example.com");
  CHECK(terminal_safe("jos\xc3\xa9") == "jos\xc3\xa9");                    // josé
  CHECK(terminal_safe("\xc2\xa0\xe2\x82\xac") == "\xc2\xa0\xe2\x82\xac");  // NBSP, euro
  CHECK(terminal_safe("\xf0\x9f\x94\x91 key") == "\xf0\x9f\x94\x91 key");  // emoji
  CHECK(terminal_safe("") == "");
}

}  // namespace castgate::player
