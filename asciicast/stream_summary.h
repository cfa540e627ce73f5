// Binary data on an exec channel without a terminal (`cat backup.tar.gz`, `tar c | ssh host
// 'tar x'`, `pg_dump -Fc`, a git pack), recorded as what it was instead of byte for byte: a
// stream summary. Escaped byte for byte, binary data costs the recording several times its size
// and says nothing a reader can use; its digest lets an investigator match a file found elsewhere.
//
// Each direction (the target's stdout, the user's stdin; stderr is always recorded in full) is
// judged chunk by chunk as it is relayed (is_binary_chunk). A chunk of binary data (of at least
// kMinRunStart bytes) starts a run
// (event stream.start), every later chunk that is not text joins it, and the first text chunk
// ends it (stream.end: offset in the direction, bytes, SHA-256 of exactly those bytes, duration);
// text is recorded in full as always. A run that lasts reports stream.progress every 10 seconds.
//
// What a run hides is bounded by what it keeps: every run of at least kMinString printable
// characters in it (NUL bytes skipped, so text interleaved with NULs stays readable), and every
// shorter run of at least three that a newline ends, is recorded as the run's strings — a command
// hidden among binary bytes sent to a shell on the target shows there. Random bytes yield about
// 0.35% of their size as strings, zeros none. Shorter text hidden among binary bytes is not shown:
// a rule whose sessions must be readable byte for byte says "binary_streams": "full".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/crypto.h"

namespace castgate::asciicast {

class SessionLog;

// True when `chunk` is not text: more NUL bytes than others (zeros, sparse files, UTF-32), or
// more than one byte in 32 of the rest that text does not hold (control characters other than
// tab, newline, carriage return, form feed, backspace, bell and escape; DEL; bytes that are not
// UTF-8). A character cut by the end of the chunk counts as text.
bool is_binary_chunk(std::string_view chunk);

// The printable strings of binary data, as strings(1) finds them, carried across chunks.
class StringsExtractor {
 public:
  static constexpr size_t kMinString = 8;
  static constexpr size_t kMinLine = 3;       // a shorter run that ends with a newline
  static constexpr size_t kMaxString = 1024;  // longer runs are cut into pieces of this size

  void feed(std::string_view bytes);
  // The run in progress counts as ended (the data ended, or its run did).
  void flush();
  // The strings found so far, one per line, and forgets them.
  std::string take();
  size_t pending() const { return found_.size(); }

 private:
  void end_run(bool line_end);
  std::string current_;  // printable characters since the last other byte (NULs skipped)
  std::string found_;
};

// One direction of one channel.
class StreamSummary {
 public:
  static constexpr std::chrono::seconds kProgressInterval{10};
  static constexpr size_t kStringsPerEvent = 2048;
  static constexpr size_t kMinRunStart = 64;  // a shorter chunk is recorded as text unless in a run

  // `direction`: "output" (the target's stdout) or "input" (the user's stdin).
  StreamSummary(SessionLog& log, int channel, const char* direction);

  // Relayed bytes of the direction: text (recorded in full by the caller; it ends a run in
  // progress), or binary data (is_binary_chunk), which starts a run or joins the one in progress.
  void text(size_t bytes, std::chrono::steady_clock::time_point now);
  // `visible`: what of them the run's strings may show (the secret masker's view of input).
  void binary(std::string_view bytes, std::string_view visible,
              std::chrono::steady_clock::time_point now);
  // More of what the run's strings may show (input the masker held back until now).
  void strings(std::string_view visible);
  bool in_run() const { return in_run_; }
  // The channel ended: the run in progress ends.
  void finish(std::chrono::steady_clock::time_point now);
  // A marker for the replay after a run ended ("binary output: 3.2 MiB, sha256 …"), once.
  std::optional<std::string> take_marker();

 private:
  void start_run(std::chrono::steady_clock::time_point now);
  void end_run(std::chrono::steady_clock::time_point now);
  void progress(std::chrono::steady_clock::time_point now);

  SessionLog& log_;
  const int channel_;
  const char* const direction_;
  uint64_t offset_ = 0;  // bytes of the direction before the current chunk
  bool in_run_ = false;
  uint64_t run_offset_ = 0, run_bytes_ = 0;
  std::chrono::steady_clock::time_point run_start_, last_progress_;
  std::optional<Sha256> digest_;
  StringsExtractor strings_;
  std::optional<std::string> marker_;
};

}  // namespace castgate::asciicast
