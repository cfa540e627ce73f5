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

}  // namespace

// Binary data is mostly bytes that end nothing worth keeping, in no predictable order: the loop
// has no branch on the byte's class but a rare one (a string long enough to keep, or too long).
void StringsExtractor::feed(std::string_view bytes) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w == 0) {  // NULs are skipped: zeros go eight at a time
        p += 8;
        continue;
      }
    }
    char ch = *p++;
    uint8_t c = kClasses.of[static_cast<uint8_t>(ch)];
    if (c == kNewline && length_ > 0 && current_[length_ - 1] == '\\') {
      --length_;  // a backslash-newline, which a shell reads as nothing: the string goes on
      continue;
    }
    current_[length_] = ch;  // kept only if it is printable (length_ grows past it)
    const bool ends = c >= kOther;
    if (ends & ((length_ >= kMinString) | ((c == kNewline) & (length_ >= kMinLine)))) keep(length_);
    length_ = (length_ + (c == kPrintable)) * !ends;
    if (length_ == kMaxString) {
      keep(length_);
      length_ = 0;
    }
  }
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
