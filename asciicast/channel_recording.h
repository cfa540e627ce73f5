// The asciicast v2 recording of one SSH channel: a header, then [t, code, data] events with t in
// seconds since the channel started. Output and input are decoded as UTF-8 incrementally per
// stream, and long data is cut into several events so that no line exceeds the line limit.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "asciicast/session_log.h"
#include "asciicast/utf8.h"
#include "common/clock.h"

namespace castgate::asciicast {

struct ChannelHeader {
  int width = 80;
  int height = 24;
  std::string term;     // env.TERM
  std::string title;    // "alice@db1.int as ubuntu"
  std::string command;  // exec command or subsystem name; empty for a shell
  std::string kind;     // "shell", "exec", "subsystem"
  bool pty = false;
};

class ChannelRecording {
 public:
  ChannelRecording(SessionLog& log, int channel, const Clock& clock);

  void start(const ChannelHeader& header);
  void output(std::string_view raw, bool is_stderr);
  void input(std::string_view raw);
  void resize(int width, int height);
  void marker(std::string_view label);
  // Flushes incomplete UTF-8 sequences (as U+FFFD).
  void finish();

  int channel() const { return channel_; }
  bool started() const { return started_; }
  double elapsed() const;

 private:
  void emit_text(std::string_view action, char code, std::string_view text);

  SessionLog& log_;
  const int channel_;
  const Clock& clock_;
  std::chrono::steady_clock::time_point start_;
  double last_t_ = 0;
  bool started_ = false;
  Utf8Sanitizer stdout_utf8_, stderr_utf8_, input_utf8_;
  std::string scratch_;
};

}  // namespace castgate::asciicast
