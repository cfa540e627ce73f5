// The record of one SSH channel. For terminals and ordinary commands: asciicast v2 (a header,
// then [t, code, data] events, t in seconds since the channel started), with UTF-8 decoded
// incrementally per stream and long data cut so that no line exceeds the line limit; plus command
// events, masked password input and alerts. For SFTP and SCP: file operations as metadata, never
// the contents.
//
// No unrecorded path: a channel is a file transfer only when the protocol data itself says so
// (SFTP's INIT/VERSION exchange, the SCP handshake, every packet or control line after them),
// never from the command string alone, never with a terminal (a pty), and never when the exec
// command holds shell syntax. The moment the data stops being that protocol, the channel is
// recorded in full in both directions from there on, with an alert. stderr is always recorded.
//
// Binary output on other exec channels without a pty is recorded as stream summaries when the
// header says so (stream_summary.h), and binary input too where the command only writes it to
// files (an upload sink, git push, rsync to the target); text on them, all other input, and
// everything on a terminal, in full.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/alert_rules.h"
#include "asciicast/channel_kind.h"
#include "asciicast/file_operation.h"
#include "asciicast/session_log.h"
#include "asciicast/upload_sink.h"
#include "asciicast/utf8.h"
#include "common/clock.h"

namespace castgate::asciicast {

class TerminalTracker;
class SftpMetadataParser;
class ScpMetadataParser;
class SecretAnswerMasker;
class StreamSummary;
class TarFollower;
class TransferFollower;

struct ChannelHeader {
  int width = 80;
  int height = 24;
  std::string term;     // env.TERM
  std::string title;    // "alice on db1.int as ubuntu"
  std::string command;  // exec command or subsystem name; empty for a shell
  ChannelKind kind = ChannelKind::kShell;
  bool pty = false;
  // Binary output (and an upload's binary input) on an exec channel without a pty as stream
  // summaries, not byte for byte (the policy's "binary_streams": "summary").
  bool summarize_binary = false;
};

class ChannelRecording {
 public:
  // `alerts` may be null; `record_payload` false keeps only events (a benchmark-only switch).
  ChannelRecording(SessionLog& log, int channel, const Clock& clock, const AlertRules* alerts,
                   bool record_payload = true);
  ~ChannelRecording();

  void start(const ChannelHeader& header);
  void from_target(std::string_view raw, bool is_stderr);
  void from_user(std::string_view raw);
  void resize(int width, int height);
  // castgate's own words to the user (shown and recorded like output).
  void notice(std::string_view text, bool is_stderr);
  void marker(std::string_view label);
  // Flushes incomplete UTF-8 (as U+FFFD) and unfinished file operations.
  void finish();

  int channel() const { return channel_; }
  double elapsed() const;
  int64_t elapsed_micros() const;
  // "sftp" or "scp" while the channel is followed as a file transfer; empty when it is recorded
  // in full (from the start, or since the data stopped being that protocol).
  const std::string& file_transfer() const { return file_transfer_; }

 private:
  // The data is not the file-transfer protocol the channel claimed: record it in full from here.
  void fall_back(const std::string& why);
  void file_data(std::string_view raw, bool from_user);
  void emit_text(std::string_view action, char code, std::string_view text);
  void output_text(std::string_view raw, bool is_stderr);
  void record_input(std::string_view raw);
  // `check_paths` false: the paths were checked against the alert rules already.
  void emit_files(std::vector<FileOperation>& ops, bool check_paths = true);
  // git and rsync: metadata beside the full recording (transfer_follower.h), never instead of it.
  void follow_transfer(std::string_view raw, bool from_user);
  void emit_command(const std::string& command, const char* source);
  void check_alerts(std::string_view applies_to, const std::string& text);
  // True when `raw`, the target's stdout or the user's input as `summary` follows it, is part of
  // a binary run (then it is not recorded as text; see summarize_binary). `utf8` is that
  // direction's sanitizer, `action` its asciicast event.
  bool summarized(StreamSummary* summary, Utf8Sanitizer& utf8, std::string_view action,
                  std::string_view raw);
  // Records what `utf8` holds (the start of a character cut by a read) as `action`'s text.
  void flush_utf8(Utf8Sanitizer& utf8, std::string_view action);
  // The run in progress ends (its stream.end and marker); nothing more is summarised.
  void end_summary(std::unique_ptr<StreamSummary>& summary);

  SessionLog& log_;
  const int channel_;
  const Clock& clock_;
  const AlertRules* alerts_;
  const bool record_payload_;
  std::chrono::steady_clock::time_point start_;
  int64_t last_t_ = 0;
  bool finished_ = false;
  std::string file_transfer_;
  Utf8Sanitizer stdout_utf8_, stderr_utf8_, input_utf8_;
  std::string scratch_;
  std::unique_ptr<TerminalTracker> terminal_;   // channels with a pty
  std::unique_ptr<SecretAnswerMasker> masker_;  // channels without one
  std::unique_ptr<SftpMetadataParser> sftp_;
  std::unique_ptr<ScpMetadataParser> scp_;
  std::unique_ptr<StreamSummary> output_summary_;  // see summarize_binary
  std::unique_ptr<StreamSummary> input_summary_;   // uploads only (stream_summary.h)
  std::unique_ptr<TransferFollower> transfer_;     // exec channels running a git or rsync server
  std::optional<UploadSink> upload_;               // exec channels that only store their input
  std::unique_ptr<TarFollower> tar_;               // ... as `tar x`
  uint64_t upload_bytes_ = 0;
};

}  // namespace castgate::asciicast
