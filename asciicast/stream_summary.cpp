#include "asciicast/stream_summary.h"

#include <cstring>
#include <nlohmann/json.hpp>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "asciicast/session_log.h"
#include "asciicast/utf8.h"
#include "common/encoding.h"

namespace castgate::asciicast {

using nlohmann::json;

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Eight bytes that are all printable ASCII (0x20..0x7e): text on its fast path.
bool all_printable(uint64_t w) {
  uint64_t below_space = (w - kOnes * 0x20) & ~w;  // high bit where a byte < 0x20 (or borrow)
  uint64_t del_or_high = w | (w + kOnes);          // high bit where a byte >= 0x7f
  return ((below_space | del_or_high) & kHighs) == 0;
}

#if defined(__SSE2__)
// Sixteen bytes that are all printable ASCII, tab, newline or carriage return: most of a text.
bool all_plain_text(const uint8_t* p) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed: bytes >= 0x80 are negative, so below 0x20 too.
  __m128i odd =
      _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
  __m128i allowed = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))),
      _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
  return _mm_movemask_epi8(_mm_andnot_si128(allowed, odd)) == 0;
}

// The NULs and the control bytes text does not hold (other than tab, newline, carriage return,
// form feed, backspace, bell, escape; and DEL) in `n` bytes, sixteen at a time, as far as it takes
// to tell that they are binary whatever the rest holds: most binary data (compressed, random,
// zeros) is told without looking at each byte. Bytes that are not UTF-8 are left to the exact
// pass, so false says nothing.
bool surely_binary(const uint8_t* p, size_t n) {
  const __m128i zero = _mm_setzero_si128();
  uint64_t nul = 0, odd = 0;
  size_t i = 0;
  while (i + 16 <= n) {
    // Up to sixteen blocks counted in byte lanes (each lane counts to 16 at most), then summed.
    __m128i nuls = zero, odds = zero;
    for (int k = 0; k < 16 && i + 16 <= n; ++k, i += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
      __m128i is_nul = _mm_cmpeq_epi8(v, zero);
      __m128i allowed =
          _mm_or_si128(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')),
                                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))),
                                    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
                                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\f')))),
                       _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\b')),
                                                 _mm_cmpeq_epi8(v, _mm_set1_epi8(0x07))),
                                    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x1b)), is_nul)));
      __m128i is_odd =
          _mm_or_si128(_mm_andnot_si128(allowed, control), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
      nuls = _mm_sub_epi8(nuls, is_nul);  // a match is -1
      odds = _mm_sub_epi8(odds, is_odd);
    }
    __m128i n_sum = _mm_sad_epu8(nuls, zero), o_sum = _mm_sad_epu8(odds, zero);
    nul += static_cast<uint64_t>(_mm_cvtsi128_si64(n_sum)) +
           static_cast<uint64_t>(_mm_extract_epi16(n_sum, 4));
    odd += static_cast<uint64_t>(_mm_cvtsi128_si64(o_sum)) +
           static_cast<uint64_t>(_mm_extract_epi16(o_sum, 4));
    // The exact pass's own bounds, with all `n` bytes as the rest (never more than it).
    if (odd * 32 > n || nul * 2 > n) return true;
  }
  return false;
}
#endif

bool text_control(uint8_t b) {
  return b == '\n' || b == '\r' || b == '\t' || b == '\f' || b == '\b' || b == 0x07 || b == 0x1b;
}

constexpr bool printable(int b) {
  return (b >= 0x20 && b < 0x7f) || b == '\t';
}

std::string size_text(uint64_t bytes) {
  char buf[64];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else if (bytes < 1024ULL * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  }
  return buf;
}

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
  return static_cast<double>(us < 0 ? 0 : us) / 1e6;
}

}  // namespace

bool is_binary_chunk(std::string_view chunk) {
  const auto* p = reinterpret_cast<const uint8_t*>(chunk.data());
  const size_t n = chunk.size();
#if defined(__SSE2__)
  // Text, which mostly starts as plain text, goes straight to the exact pass.
  if (n >= 256 && !all_plain_text(p) && surely_binary(p, n)) return true;
#endif
  size_t nul = 0, odd = 0, i = 0;
  while (i < n && i < 3 && (p[i] & 0xc0) == 0x80) ++i;  // the rest of a character cut before
  while (i < n) {
#if defined(__SSE2__)
    if (i + 16 <= n && all_plain_text(p + i)) {
      i += 16;
      continue;
    }
#endif
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (all_printable(w)) {
        i += 8;
        continue;
      }
      if (w == 0) {  // zeros: decided as soon as they are most of the chunk
        nul += 8;
        i += 8;
        if (nul * 2 > n) return true;
        continue;
      }
    }
    uint8_t b = p[i];
    if (b == 0) {
      ++nul;
      ++i;
    } else if (b < 0x20) {
      if (!text_control(b)) ++odd;
      ++i;
    } else if (b < 0x7f) {
      ++i;
    } else if (b == 0x7f) {
      ++odd;
      ++i;
    } else if (size_t len = utf8_sequence_length(chunk.substr(i), true); len > 0) {
      i += len;
    } else {
      ++odd;
      ++i;
    }
    // Decided already whatever the rest holds: binary data is told within its first bytes.
    if (odd * 32 > n || nul * 2 > n) return true;
  }
  size_t rest = n - nul;
  if (nul > rest) return true;
  return odd * 32 > rest;
}

namespace {

// What a byte is to strings(1): skipped (NUL), part of a string, the end of one, or a newline.
enum : uint8_t { kSkip = 0, kPrintable = 1, kOther = 2, kNewline = 3 };

struct ByteClasses {
  uint8_t of[256];
  constexpr ByteClasses() : of() {
    for (int b = 0; b < 256; ++b)
      of[b] = b == 0 ? kSkip : b == '\n' ? kNewline : printable(b) ? kPrintable : kOther;
  }
};
constexpr ByteClasses kClasses;

#if defined(__SSE2__)
// Sixteen bytes of binary data as strings(1) sees them: bit i of `go_on` is set when byte i does
// not end a string (printable, or a NUL, which is skipped); `newlines` marks newlines.
struct BlockClasses {
  unsigned go_on, nuls, newlines;
};

BlockClasses classify_block(const uint8_t* p) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed: bytes >= 0x80 are negative, so not above 0x1f.
  __m128i printable = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
                                       _mm_cmpgt_epi8(v, _mm_set1_epi8(0x1f)));
  printable = _mm_or_si128(printable, _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
  auto nuls = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())));
  auto newlines = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
  return {static_cast<unsigned>(_mm_movemask_epi8(printable)) | nuls, nuls, newlines};
}

// True when a run of kMinString bits is set in `bits` (bit i and the seven above it).
constexpr bool has_run_of_eight(uint32_t bits) {
  bits &= bits >> 1;
  bits &= bits >> 2;
  bits &= bits >> 4;
  return bits != 0;
}
static_assert(StringsExtractor::kMinString == 8, "has_run_of_eight counts kMinString bits");
#endif

}  // namespace

// Random bytes hold a printable character in three of eight, a string in about one of 2,800
// positions: sixteen bytes at a time are told to end no string (no newline, no run of
// kMinString bytes that do not end one, counting the run carried in), and only the characters
// after their last ending byte are kept as the run in progress. Anything else goes byte by byte.
void StringsExtractor::feed(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* const end = p + bytes.size();
  size_t length = length_;  // a local: the stores into current_ cannot alias it
  while (p < end) {
    const uint8_t* block_end = end - p > 16 ? p + 16 : end;
#if defined(__SSE2__)
    if (block_end - p == 16) {
      BlockClasses c = classify_block(p);
      if (c.nuls == 0xffff) {  // NULs are skipped: zeros go sixteen at a time
        p += 16;
        continue;
      }
      if (length < kMinString && c.newlines == 0 &&
          !has_run_of_eight((c.go_on << length) | ((1u << length) - 1))) {
        // No string ends here, and some byte ends the run (sixteen that do not would be a run):
        // the run in progress is the printable characters after the last.
        const int last_end = 31 - __builtin_clz(~c.go_on & 0xffffu);
        length = 0;
        for (const uint8_t* q = p + last_end + 1; q < block_end; ++q)
          if (*q != 0) current_[length++] = static_cast<char>(*q);
        p = block_end;
        continue;
      }
    }
#endif
    for (; p < block_end; ++p) {
      const uint8_t ch = *p;
      const uint8_t c = kClasses.of[ch];
      if (c == kSkip) continue;  // NULs are skipped
      if (c == kNewline && length > 0 && current_[length - 1] == '\\') {
        --length;  // a backslash-newline, which a shell reads as nothing: the string goes on
        continue;
      }
      if (c == kPrintable) {
        current_[length++] = static_cast<char>(ch);
        if (length == kMaxString) {
          keep(length);
          length = 0;
        }
        continue;
      }
      if (length >= kMinString || (c == kNewline && length >= kMinLine)) keep(length);
      length = 0;
    }
  }
  length_ = length;
}

void StringsExtractor::keep(size_t length) {
  found_.append(current_, length);
  found_.push_back('\n');
}

void StringsExtractor::flush() {
  if (length_ >= kMinString) keep(length_);
  length_ = 0;
}

std::string StringsExtractor::take() {
  std::string out;
  out.swap(found_);
  return out;
}

StreamSummary::StreamSummary(SessionLog& log, int channel, StreamDirection direction)
    : log_(log), channel_(channel), direction_(direction) {}

void StreamSummary::text(size_t bytes, std::chrono::steady_clock::time_point now) {
  if (in_run_) end_run(now);
  offset_ += bytes;
}

void StreamSummary::binary(std::string_view bytes, std::chrono::steady_clock::time_point now) {
  if (!in_run_) {
    in_run_ = true;
    run_offset_ = offset_;
    run_bytes_ = 0;
    run_start_ = last_progress_ = now;
    digest_.emplace();
  }
  digest_->update(bytes);
  strings_.feed(bytes);
  run_bytes_ += bytes.size();
  offset_ += bytes.size();
  if (now - last_progress_ >= kProgressInterval || strings_.pending() >= kStringsPerEvent)
    progress(now);
}

void StreamSummary::finish(std::chrono::steady_clock::time_point now) {
  if (in_run_) end_run(now);
}

std::optional<std::string> StreamSummary::take_marker() {
  auto m = std::move(marker_);
  marker_.reset();
  return m;
}

json StreamSummary::run_fields(std::chrono::steady_clock::time_point now) const {
  return json{{"direction", direction_ == StreamDirection::kInput ? "input" : "output"},
              {"offset", run_offset_},
              {"bytes", run_bytes_},
              {"seconds", seconds_between(run_start_, now)}};
}

// A run that lasts, or whose strings fill an event: how far it is, and the strings so far (cut
// into several events if they do not fit one line).
void StreamSummary::progress(std::chrono::steady_clock::time_point now) {
  last_progress_ = now;
  json s = run_fields(now);
  std::string found = strings_.take();
  if (!found.empty()) s["strings"] = std::move(found);
  log_.emit(EventKind{"stream.progress", "", ""}, json{{"castgate", {{"stream", std::move(s)}}}},
            channel_, "/castgate/stream/strings");
}

// The run's last strings go in a progress event first, so that its end is one line, never cut
// into parts that would each count the run.
void StreamSummary::end_run(std::chrono::steady_clock::time_point now) {
  in_run_ = false;
  strings_.flush();
  if (strings_.pending() > 0) progress(now);
  std::string hex = hex_encode(std::string_view(
      reinterpret_cast<const char*>(digest_->finish().data()), sizeof(Sha256Digest)));
  digest_.reset();
  json s = run_fields(now);
  s["sha256"] = hex;
  // ECS file.hash.sha256 and file.size: the digest is searchable where file hashes are.
  json f{{"castgate", {{"stream", std::move(s)}}},
         {"file", {{"hash", {{"sha256", hex}}}, {"size", run_bytes_}}}};
  std::string what =
      (direction_ == StreamDirection::kInput ? "binary input: " : "binary output: ") +
      size_text(run_bytes_);
  log_.emit(EventKind{"stream.end", "", what}, std::move(f), channel_);
  marker_ = what + ", sha256 " + hex;
}

}  // namespace castgate::asciicast
