#include "asciicast/json_text.h"

#include "asciicast/utf8.h"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

namespace {

// Each byte's escaped form, padded to 8 bytes so that it can be copied in one go.
struct Escape {
  char text[8];
  uint8_t len;
};
constexpr std::array<Escape, 256> make_escapes() {
  std::array<Escape, 256> t{};
  constexpr char kHex[] = "0123456789abcdef";
  for (int c = 0; c < 256; ++c) {
    t[c].text[0] = static_cast<char>(c);
    t[c].len = 1;
  }
  for (int c = 0; c < 0x20; ++c) {
    t[c] = Escape{{'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15], 0, 0}, 6};
  }
  t['\b'] = Escape{{'\\', 'b'}, 2};
  t['\f'] = Escape{{'\\', 'f'}, 2};
  t['\n'] = Escape{{'\\', 'n'}, 2};
  t['\r'] = Escape{{'\\', 'r'}, 2};
  t['\t'] = Escape{{'\\', 't'}, 2};
  t['"'] = Escape{{'\\', '"'}, 2};
  t['\\'] = Escape{{'\\', '\\'}, 2};
  return t;
}
constexpr auto kEscapes = make_escapes();

// Bytes from `p` up to the first that needs escaping (a control character, '"' or '\\'), or
// `end`. Sixteen bytes at a time with SSE2 (every x86-64 has it), eight elsewhere (SWAR).
inline const unsigned char* plain_run_end(const unsigned char* p, const unsigned char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i last_control = _mm_set1_epi8(0x1f);
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(x, last_control), x);  // x <= 0x1f
    __m128i hit =
        _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
    if (int mask = _mm_movemask_epi8(hit)) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#else
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    uint64_t control = (x - kOnes * 0x20) & ~x & kHigh;  // bytes below 0x20
    if ((control | zero_byte(x ^ (kOnes * '"')) | zero_byte(x ^ (kOnes * '\\'))) != 0) break;
    p += 8;
  }
#endif
  while (p < end && kEscapeLen[*p] == 0) ++p;
  return p;
}

size_t utf8_char_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xf0) return 4;
  if (lead >= 0xe0) return 3;
  return 2;
}

}  // namespace

size_t append_json_string_bounded(std::string& out, std::string_view utf8, size_t budget) {
  size_t start = out.size();
  size_t room_needed = std::min(budget, utf8.size() * 6);  // escaping grows a byte to 6 at most
  // The quotes, and slack for the 8-byte copies of the escape table.
  out.resize(start + room_needed + 10);
  char* w = out.data() + start;
  char* limit = w + 1 + room_needed;
  *w++ = '"';
  const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
  const auto* end = p + utf8.size();
  while (p < end) {
    // A run that needs no escaping is copied at once, cut at a character boundary.
    // Looking no further than the line has room for: a long chunk is cut into many lines.
    const unsigned char* run = p;
    size_t room_left = static_cast<size_t>(limit - w);
    p = plain_run_end(p, static_cast<size_t>(end - p) > room_left ? p + room_left + 1 : end);
    if (p > run) {
      size_t n = static_cast<size_t>(p - run);
      size_t room = static_cast<size_t>(limit - w);
      if (n > room) {
        n = utf8_prefix_at_most(std::string_view(reinterpret_cast<const char*>(run), n), room);
        if (n == 0 && w == out.data() + start + 1) n = utf8_char_length(*run);  // make progress
        std::memcpy(w, run, n);
        w += n;
        p = run + n;
        break;
      }
      std::memcpy(w, run, n);
      w += n;
      if (p == end) break;
    }
    const Escape& e = kEscapes[*p];
    if (w + e.len > limit) {
      if (w == out.data() + start + 1) {  // nothing written yet: take it anyway
        std::memcpy(w, e.text, 8);
        w += e.len;
        ++p;
      }
      break;
    }
    std::memcpy(w, e.text, 8);  // the table pads to 8 bytes; only e.len of them count
    w += e.len;
    ++p;
  }
  *w++ = '"';
  out.resize(static_cast<size_t>(w - out.data()));
  return static_cast<size_t>(p - reinterpret_cast<const unsigned char*>(utf8.data()));
}

void append_json_string(std::string& out, std::string_view utf8) {
  append_json_string_bounded(out, utf8, SIZE_MAX / 8);
}

void append_json_double(std::string& out, double v) {
  out += nlohmann::json(v).dump();
}

void append_json_seconds(std::string& out, int64_t micros) {
  // nlohmann writes the shortest decimal that round-trips; for whole microseconds under 10^9 s
  // that is the decimal itself with trailing zeros dropped ("12.5", "3.0"), except below 10^-4 s
  // where it switches to exponent notation: leave those (and anything odd) to nlohmann.
  if (micros < 100 || micros >= 1000000000000000LL) {
    append_json_double(out, static_cast<double>(micros) / 1e6);
    return;
  }
  append_json_uint(out, static_cast<uint64_t>(micros / 1000000));
  int64_t frac = micros % 1000000;
  char digits[8] = {'.', '0', '0', '0', '0', '0', '0', 0};
  for (int i = 6; i >= 1; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int len = 7;
  while (len > 2 && digits[len - 1] == '0') --len;
  out.append(digits, static_cast<size_t>(len));
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
