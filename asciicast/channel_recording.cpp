#include "asciicast/channel_recording.h"

#include "asciicast/json_text.h"

namespace castgate::asciicast {

ChannelRecording::ChannelRecording(SessionLog& log, int channel, const Clock& clock)
    : log_(log), channel_(channel), clock_(clock), start_(clock.steady_now()) {}

double ChannelRecording::elapsed() const {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_.steady_now() - start_);
  return static_cast<double>(us.count()) / 1e6;
}

void ChannelRecording::start(const ChannelHeader& header) {
  start_ = clock_.steady_now();
  started_ = true;
  nlohmann::json h;
  h["version"] = 2;
  h["width"] = header.width > 0 ? header.width : 80;
  h["height"] = header.height > 0 ? header.height : 24;
  h["timestamp"] = unix_seconds(clock_.now());
  h["title"] = header.title;
  if (!header.command.empty()) h["command"] = header.command;
  h["env"] = nlohmann::json::object();
  if (!header.term.empty()) h["env"]["TERM"] = header.term;
  nlohmann::json fields;
  fields["asciicast"]["header"] = std::move(h);
  fields["castgate"]["channel_kind"] = header.kind;
  fields["castgate"]["pty"] = header.pty;
  log_.emit(EventKind{"asciicast.header", {"session"}, {"start"}, "", ""}, std::move(fields),
            channel_);
}

void ChannelRecording::emit_text(std::string_view action, char code, std::string_view text) {
  if (text.empty()) return;
  double t = elapsed();
  if (t < last_t_) t = last_t_;  // times must never go backwards
  last_t_ = t;
  size_t budget = log_.max_asciicast_data(channel_, action);
  while (!text.empty()) {
    size_t take = json_escaped_prefix(text, budget);
    if (take == 0) take = utf8_prefix_at_most(text, 4) ? utf8_prefix_at_most(text, 4) : 1;
    log_.emit_asciicast(channel_, action, t, code, text.substr(0, take));
    text.remove_prefix(take);
  }
}

void ChannelRecording::output(std::string_view raw, bool is_stderr) {
  scratch_.clear();
  (is_stderr ? stderr_utf8_ : stdout_utf8_).feed(raw, scratch_);
  emit_text(is_stderr ? "asciicast.stderr" : "asciicast.output", 'o', scratch_);
}

void ChannelRecording::input(std::string_view raw) {
  scratch_.clear();
  input_utf8_.feed(raw, scratch_);
  emit_text("asciicast.input", 'i', scratch_);
}

void ChannelRecording::resize(int width, int height) {
  std::string data = std::to_string(width) + "x" + std::to_string(height);
  emit_text("asciicast.resize", 'r', data);
}

void ChannelRecording::marker(std::string_view label) {
  emit_text("asciicast.marker", 'm', label);
}

void ChannelRecording::finish() {
  scratch_.clear();
  stdout_utf8_.flush(scratch_);
  emit_text("asciicast.output", 'o', scratch_);
  scratch_.clear();
  stderr_utf8_.flush(scratch_);
  emit_text("asciicast.stderr", 'o', scratch_);
  scratch_.clear();
  input_utf8_.flush(scratch_);
  emit_text("asciicast.input", 'i', scratch_);
}

}  // namespace castgate::asciicast
