#include "asciicast/utf8.h"

namespace castgate::asciicast {
namespace {
constexpr char kReplacement[] = "\xef\xbf\xbd";
}

void Utf8Sanitizer::reject_pending(std::string& out) {
  out.append(kReplacement, 3);
  have_ = need_ = 0;
}

void Utf8Sanitizer::feed(std::string_view in, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const auto* end = p + in.size();
  out.reserve(out.size() + in.size());
  while (p < end) {
    if (need_ == 0) {
      // Fast path: copy a run of ASCII at once.
      const auto* run = p;
      while (p < end && *p < 0x80) ++p;
      if (p > run) out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
      if (p == end) break;
      uint8_t b = *p++;
      lo_ = 0x80;
      hi_ = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        need_ = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        need_ = 2;
        if (b == 0xe0) lo_ = 0xa0;  // no overlongs
        if (b == 0xed) hi_ = 0x9f;  // no surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        need_ = 3;
        if (b == 0xf0) lo_ = 0x90;
        if (b == 0xf4) hi_ = 0x8f;  // nothing above U+10FFFF
      } else {
        out.append(kReplacement, 3);  // stray continuation byte or invalid lead byte
        continue;
      }
      pending_[0] = b;
      have_ = 1;
      continue;
    }
    uint8_t b = *p;
    if (b < lo_ || b > hi_) {
      // The sequence is broken: replace what we have and look at this byte afresh.
      reject_pending(out);
      continue;
    }
    ++p;
    pending_[have_++] = b;
    lo_ = 0x80;
    hi_ = 0xbf;
    if (--need_ == 0) {
      out.append(reinterpret_cast<const char*>(pending_), static_cast<size_t>(have_));
      have_ = 0;
    }
  }
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

bool utf8_valid(std::string_view s) {
  Utf8Sanitizer z;
  std::string out;
  z.feed(s, out);
  return !z.has_pending() && out.size() == s.size() && out == s;
}

}  // namespace castgate::asciicast
