#include "player/terminal_text.h"

#include <cstdint>
#include <cstdio>

#include "asciicast/utf8.h"

namespace castgate::player {
namespace {

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
    size_t len = asciicast::utf8_sequence_length(recorded);
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
