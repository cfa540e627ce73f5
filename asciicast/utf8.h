// Incremental UTF-8 sanitising. Terminal output arrives in arbitrary chunks; a character split
// across two reads must stay whole, and invalid bytes must become U+FFFD so that every recorded
// line is valid UTF-8 (the asciinema CLI crashes otherwise).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace castgate::asciicast {

class Utf8Sanitizer {
 public:
  // Appends the valid UTF-8 form of `in` to `out`. An incomplete sequence at the end of `in` is
  // held back until the next call (or flush()).
  void feed(std::string_view in, std::string& out);
  // Like feed(), without a copy where it can: the valid UTF-8 form of `in` (what feed() would
  // append), either a part of `in` itself or `scratch` (cleared and filled). Valid text, the
  // common case, is returned as it came, only an incomplete last character held back.
  std::string_view sanitize(std::string_view in, std::string& scratch);
  // Emits U+FFFD for a held-back incomplete sequence, if any.
  void flush(std::string& out);
  bool has_pending() const { return need_ > 0; }

 private:
  void reject_pending(std::string& out);
  void feed_slow(std::string_view in, std::string& out);
  // With nothing held back: how much of `in` is valid UTF-8 as it stands, up to an incomplete
  // last character (at most 3 bytes, which feed_slow holds back); npos if something is invalid.
  size_t valid_prefix(std::string_view in) const;
  uint8_t pending_[4] = {};
  int have_ = 0;                   // bytes of the current sequence seen
  int need_ = 0;                   // continuation bytes still expected
  uint8_t lo_ = 0x80, hi_ = 0xbf;  // allowed range of the next continuation byte
};

// Length of the longest prefix of valid UTF-8 `s` that is at most `max_bytes` long and does not
// split a character.
size_t utf8_prefix_at_most(std::string_view s, size_t max_bytes);

// Length of the valid UTF-8 sequence at the start of non-empty `s` (Unicode table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF; 1 for ASCII), or 0 if it does not start
// with one. With `cut_ok`, a sequence that is valid as far as `s` goes but cut by its end counts
// as whole (returns s.size()).
size_t utf8_sequence_length(std::string_view s, bool cut_ok = false);

// True if `s` is entirely valid UTF-8.
bool utf8_valid(std::string_view s);

// Appends code point `cp` as UTF-8. libvterm decodes up to six-byte sequences, so a terminal cell
// can hold a code point above U+10FFFF (or a surrogate): those are not characters and become
// U+FFFD.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace castgate::asciicast
