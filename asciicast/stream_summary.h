// Binary output on an exec channel without a terminal (`cat backup.tar.gz`, `tar c`, `pg_dump
// -Fc`, a git pack), recorded as what it was instead of byte for byte: a stream summary. Escaped
// byte for byte, binary data costs the recording several times its size and says nothing a reader
// can use; its digest lets an investigator match a file found elsewhere.
//
// The target's stdout is summarised. What the user sends (stdin) is what the target runs (`ssh
// host bash` reads its commands there) and stays recorded in full, binary or not, unless the
// command only writes it to files: a recognised upload sink (`cat > PATH`, `tar x`, `dd of=PATH`:
// upload_sink.h), or git push and rsync to the target while their data is that protocol
// (transfer_follower.h). stderr is always recorded in full. A direction is judged read by read as
// it is relayed (is_binary_chunk): a read of binary data of at least kMinRunStart bytes starts a
// run, every later read that is not text joins it, and the first text ends it with stream.end
// (direction, offset in that direction, bytes, SHA-256 of exactly those bytes, duration) and a
// marker for the replay. A run that lasts reports stream.progress every 10 seconds. Text is
// recorded in full as always.
//
// The run's printable strings go with it: every run of at least kMinString printable characters
// (NUL bytes skipped, so text interleaved with NULs stays readable, and backslash-newlines, which
// a shell reads as nothing: a command cut into one character per line shows whole), and every
// shorter one of at least kMinLine that a newline ends. Random bytes yield about 0.35% of their
// size as strings, zeros none.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/crypto.h"

namespace castgate::asciicast {

class SessionLog;

// True when `chunk` is not text: more NUL bytes than others (zeros, sparse files, UTF-32), or
// more than one byte in 32 of the rest that text does not hold (control characters other than
// tab, newline, carriage return, form feed, backspace, bell and escape; DEL; bytes that are not
// UTF-8). A character cut by either end of the chunk counts as text (up to three continuation
// bytes at its start: the rest of a character the previous read cut).
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
  void keep(size_t length);       // current_[0, length) is a string
  char current_[kMaxString + 1];  // printable characters since the last other byte (NULs skipped)
  size_t length_ = 0;
  std::string found_;
};

enum class StreamDirection { kOutput, kInput };  // the target's stdout, the user's stdin

// One direction of one channel.
class StreamSummary {
 public:
  static constexpr std::chrono::seconds kProgressInterval{10};
  static constexpr size_t kStringsPerEvent = 2048;
  static constexpr size_t kMinRunStart = 64;  // a shorter chunk is recorded as text unless in a run

  StreamSummary(SessionLog& log, int channel, StreamDirection direction);

  // Relayed data: text (recorded in full by the caller; it ends a run in progress), or binary
  // data (is_binary_chunk), which starts a run or joins the one in progress.
  void text(size_t bytes, std::chrono::steady_clock::time_point now);
  void binary(std::string_view bytes, std::chrono::steady_clock::time_point now);
  bool in_run() const { return in_run_; }
  // The channel ended: the run in progress ends.
  void finish(std::chrono::steady_clock::time_point now);
  // A marker for the replay after a run ended ("binary output: 3.2 MiB, sha256 …", "binary
  // input: …"), once.
  std::optional<std::string> take_marker();

 private:
  void end_run(std::chrono::steady_clock::time_point now);
  void progress(std::chrono::steady_clock::time_point now);
  nlohmann::json run_fields(std::chrono::steady_clock::time_point now) const;

  SessionLog& log_;
  const int channel_;
  const StreamDirection direction_;
  uint64_t offset_ = 0;  // bytes of this direction before the current chunk
  bool in_run_ = false;
  uint64_t run_offset_ = 0, run_bytes_ = 0;
  std::chrono::steady_clock::time_point run_start_, last_progress_;
  std::optional<Sha256> digest_;
  StringsExtractor strings_;
  std::optional<std::string> marker_;
};

}  // namespace castgate::asciicast
