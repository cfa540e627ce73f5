#include "player/terminal_text.h"

#include <cstdint>
#include <cstdio>

namespace castgate::player {
namespace {

// Length of the valid UTF-8 sequence at the start of `s` (Unicode table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 if it does not start with one.
size_t valid_sequence_length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b = byte(0);
  if (b < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xbf;  // the range allowed for the second byte
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    if (b == 0xe0) lo = 0xa0;
    if (b == 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    if (b == 0xf0) lo = 0x90;
    if (b == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < len || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  return len;
}

void append_escape(std::string& out, const char* format, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

}  // namespace

std::string terminal_safe(std::string_view recorded) {
  std::string out;
  out.reserve(recorded.size());
  while (!recorded.empty()) {
    auto b = static_cast<uint8_t>(recorded[0]);
    size_t len = valid_sequence_length(recorded);
    if (len == 0 || b < 0x20 || b == 0x7f) {
      append_escape(out, "\\x%02x", b);  // a C0 control, DEL, or a byte that is not UTF-8
      len = 1;
    } else if (b == '\\') {
      out += "\\\\";
    } else if (b == 0xc2 && static_cast<uint8_t>(recorded[1]) < 0xa0) {
      // U+0080..U+009F: C1 controls, which some terminals act on (U+009B is CSI).
      append_escape(out, "\\u%04x", static_cast<uint8_t>(recorded[1]));
    } else {
      out.append(recorded.substr(0, len));
    }
    recorded.remove_prefix(len);
  }
  return out;
}

}  // namespace castgate::player
