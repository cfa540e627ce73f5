#include "asciicast/json_text.h"

#include "asciicast/utf8.h"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>

namespace castgate::asciicast {
namespace {

// 0 = copy, otherwise the escape's length (2 for short forms, 6 for \u00xx).
constexpr std::array<uint8_t, 256> make_escape_len() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 6;
  t['\b'] = t['\f'] = t['\n'] = t['\r'] = t['\t'] = 2;
  t['"'] = t['\\'] = 2;
  return t;
}
constexpr auto kEscapeLen = make_escape_len();

}  // namespace

size_t json_string_size(std::string_view utf8) {
  size_t n = 2;
  for (unsigned char c : utf8) n += kEscapeLen[c] ? kEscapeLen[c] : 1;
  return n;
}

void append_json_string(std::string& out, std::string_view utf8) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + utf8.size() + 2);
  out += '"';
  const char* p = utf8.data();
  const char* end = p + utf8.size();
  while (p < end) {
    const char* run = p;
    while (p < end && kEscapeLen[static_cast<unsigned char>(*p)] == 0) ++p;
    out.append(run, static_cast<size_t>(p - run));
    if (p == end) break;
    unsigned char c = static_cast<unsigned char>(*p++);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(esc, 6);
      }
    }
  }
  out += '"';
}

void append_json_double(std::string& out, double v) {
  out += nlohmann::json(v).dump();
}

void append_json_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace castgate::asciicast

namespace castgate::asciicast {
size_t json_escaped_prefix(std::string_view s, size_t budget) {
  size_t used = 0, i = 0;
  for (; i < s.size(); ++i) {
    uint8_t c = kEscapeLen[static_cast<unsigned char>(s[i])];
    size_t w = c ? c : 1;
    if (used + w > budget) break;
    used += w;
  }
  return utf8_prefix_at_most(s, i);
}
}  // namespace castgate::asciicast
