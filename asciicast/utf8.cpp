#include "asciicast/utf8.h"

#include <simdjson.h>

#include <cstring>

namespace castgate::asciicast {
namespace {
constexpr char kReplacement[] = "\xef\xbf\xbd";
}

void Utf8Sanitizer::reject_pending(std::string& out) {
  out.append(kReplacement, 3);
  have_ = need_ = 0;
}

namespace {
// Eight bytes at a time: true if any has its high bit set.
inline bool any_high_bit(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return (w & 0x8080808080808080ull) != 0;
}
}  // namespace

size_t Utf8Sanitizer::valid_prefix(std::string_view in) const {
  // Short chunks (keystrokes, prompts) go the byte-by-byte way, which needs no set-up.
  if (need_ != 0 || in.size() < 64) return std::string_view::npos;
  size_t whole = in.size();
  size_t back = 0;
  while (back < 3 && back < whole && (static_cast<uint8_t>(in[whole - 1 - back]) & 0xc0) == 0x80)
    ++back;
  size_t lead = whole - 1 - back;
  auto b = static_cast<uint8_t>(in[lead]);
  size_t len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
  size_t cut = (len > back + 1) ? lead : whole;  // an incomplete last character
  if (len != 0 && simdjson::validate_utf8(in.data(), cut) && (cut == whole || in.size() - cut < 4))
    return cut;
  return std::string_view::npos;
}

void Utf8Sanitizer::feed(std::string_view in, std::string& out) {
  // The common case (text, nothing held back): validate with SIMD and copy. A character cut by
  // the end of the chunk is held back for the next call.
  size_t cut = valid_prefix(in);
  if (cut == std::string_view::npos) return feed_slow(in, out);
  out.append(in.data(), cut);
  if (cut < in.size()) feed_slow(in.substr(cut), out);  // holds the partial character back
}

std::string_view Utf8Sanitizer::sanitize(std::string_view in, std::string& scratch) {
  scratch.clear();
  size_t cut = valid_prefix(in);
  if (cut == std::string_view::npos) {
    feed_slow(in, scratch);
    return scratch;
  }
  if (cut < in.size()) feed_slow(in.substr(cut), scratch);  // holds the partial character back
  if (scratch.empty()) return in.substr(0, cut);
  // The last "character" was no start of one after all (a U+FFFD): its own copy, then.
  scratch.insert(0, in.data(), cut);
  return scratch;
}

void Utf8Sanitizer::feed_slow(std::string_view in, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const auto* end = p + in.size();
  // Room for the worst case (every byte a U+FFFD) up front; trimmed at the end.
  size_t start = out.size();
  out.resize(start + in.size() * 3 + 8);
  char* w = out.data() + start;
  auto put_replacement = [&w] {
    std::memcpy(w, kReplacement, 3);
    w += 3;
  };
  if (need_ > 0) {
    // Finish the sequence held back from the previous call first.
    while (p < end && need_ > 0) {
      uint8_t b = *p;
      if (b < lo_ || b > hi_) {
        put_replacement();
        have_ = need_ = 0;
        break;
      }
      ++p;
      pending_[have_++] = b;
      lo_ = 0x80;
      hi_ = 0xbf;
      if (--need_ == 0) {
        std::memcpy(w, pending_, static_cast<size_t>(have_));
        w += have_;
        have_ = 0;
      }
    }
  }
  while (p < end) {
    // Fast path: runs of ASCII, eight bytes at a time.
    const uint8_t* run = p;
    while (end - p >= 8 && !any_high_bit(p)) p += 8;
    while (p < end && *p < 0x80) ++p;
    if (p > run) {
      std::memcpy(w, run, static_cast<size_t>(p - run));
      w += p - run;
    }
    if (p == end) break;
    uint8_t b = *p;
    int n = 0;
    uint8_t lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b == 0xe0) lo = 0xa0;  // no overlongs
      if (b == 0xed) hi = 0x9f;  // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b == 0xf0) lo = 0x90;
      if (b == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
    } else {
      put_replacement();  // stray continuation byte or invalid lead byte
      ++p;
      continue;
    }
    // A complete, valid sequence is copied as is.
    int i = 1;
    for (; i <= n && p + i < end; ++i) {
      uint8_t c = p[i];
      if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf)) break;
    }
    if (i == n + 1) {
      std::memcpy(w, p, static_cast<size_t>(n + 1));
      w += n + 1;
      p += n + 1;
      continue;
    }
    if (p + i == end) {
      // Cut by the end of this chunk: keep it for the next call.
      have_ = 0;
      for (const uint8_t* q = p; q < end; ++q) pending_[have_++] = *q;
      need_ = n + 1 - have_;
      lo_ = have_ == 1 ? lo : 0x80;
      hi_ = have_ == 1 ? hi : 0xbf;
      p = end;
      break;
    }
    // Broken in the middle: one U+FFFD for the maximal invalid subpart, then look afresh.
    put_replacement();
    p += i;
  }
  out.resize(static_cast<size_t>(w - out.data()));
}

void Utf8Sanitizer::flush(std::string& out) {
  if (need_ > 0) reject_pending(out);
}

size_t utf8_prefix_at_most(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s.size();
  size_t n = max_bytes;
  // Step back over continuation bytes to the start of the character that crosses the limit.
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xc0) == 0x80) --n;
  return n;
}

size_t utf8_sequence_length(std::string_view s, bool cut_ok) {
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
  for (size_t i = 1; i < len; ++i) {
    if (i >= s.size()) return cut_ok ? s.size() : 0;
    if (byte(i) < lo || byte(i) > hi) return 0;
    lo = 0x80;
    hi = 0xbf;
  }
  return len;
}

bool utf8_valid(std::string_view s) {
  Utf8Sanitizer z;
  std::string out;
  z.feed(s, out);
  return !z.has_pending() && out.size() == s.size() && out == s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

}  // namespace castgate::asciicast
