#include "asciicast/channel_recording.h"

#include <cstdio>

#include "asciicast/json_text.h"
#include "asciicast/scp_parser.h"
#include "asciicast/sftp_parser.h"
#include "asciicast/terminal_tracker.h"

namespace castgate::asciicast {

using nlohmann::json;

ChannelRecording::ChannelRecording(SessionLog& log, int channel, const Clock& clock,
                                   const AlertRules* alerts, bool record_payload)
    : log_(log),
      channel_(channel),
      clock_(clock),
      alerts_(alerts),
      record_payload_(record_payload),
      start_(clock.steady_now()) {}

ChannelRecording::~ChannelRecording() = default;

int64_t ChannelRecording::elapsed_micros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_.steady_now() - start_)
      .count();
}

double ChannelRecording::elapsed() const {
  return static_cast<double>(elapsed_micros()) / 1e6;
}

void ChannelRecording::start(const ChannelHeader& header) {
  start_ = clock_.steady_now();
  if (header.kind == "subsystem" && header.command == "sftp") {
    file_transfer_ = "sftp";
    sftp_ = std::make_unique<SftpMetadataParser>();
  } else if (header.kind == "exec") {
    if (auto scp = parse_scp_command(header.command)) {
      file_transfer_ = "scp";
      scp_ = std::make_unique<ScpMetadataParser>(*scp);
    }
  }
  if (header.pty && file_transfer_.empty())
    terminal_ = std::make_unique<TerminalTracker>(header.width, header.height);

  json h;
  h["version"] = 2;
  h["width"] = header.width > 0 ? header.width : 80;
  h["height"] = header.height > 0 ? header.height : 24;
  h["timestamp"] = unix_seconds(clock_.now());
  h["title"] = header.title;
  if (!header.command.empty()) h["command"] = header.command;
  h["env"] = json::object();
  if (!header.term.empty()) h["env"]["TERM"] = header.term;
  json fields;
  fields["asciicast"]["header"] = std::move(h);
  fields["castgate"]["channel_kind"] = header.kind;
  fields["castgate"]["pty"] = header.pty;
  if (!file_transfer_.empty()) fields["castgate"]["file_transfer"] = file_transfer_;
  log_.emit(EventKind{"asciicast.header", {"session"}, {"start"}, "", ""}, std::move(fields),
            channel_);
  if (header.kind == "exec") emit_command(header.command, "exec");
}

void ChannelRecording::emit_text(std::string_view action, char code, std::string_view text) {
  if (text.empty()) return;
  int64_t t = elapsed_micros();
  if (t < last_t_) t = last_t_;  // times never go backwards
  last_t_ = t;
  while (!text.empty()) text.remove_prefix(log_.emit_asciicast(channel_, action, t, code, text));
}

void ChannelRecording::output_text(std::string_view raw, bool is_stderr) {
  scratch_.clear();
  (is_stderr ? stderr_utf8_ : stdout_utf8_).feed(raw, scratch_);
  emit_text(is_stderr ? "asciicast.stderr" : "asciicast.output", 'o', scratch_);
}

void ChannelRecording::from_target(std::string_view raw, bool is_stderr) {
  if (finished_) return;
  std::vector<FileOperation> ops;
  if (sftp_) {
    if (!is_stderr) sftp_->from_server(raw, ops);
    return emit_files(ops);
  }
  if (scp_) {
    if (!is_stderr) scp_->from_server(raw, ops);
    return emit_files(ops);
  }
  std::vector<std::string> commands;
  if (terminal_ && !is_stderr) {
    commands = terminal_->output(raw);
    record_input(terminal_->take_recordable_input());  // typed before this output echoed it
  }
  if (record_payload_) output_text(raw, is_stderr);
  for (const auto& c : commands) emit_command(c, "terminal");
}

void ChannelRecording::from_user(std::string_view raw) {
  if (finished_) return;
  std::vector<FileOperation> ops;
  if (sftp_) {
    sftp_->from_client(raw, ops);
    return emit_files(ops);
  }
  if (scp_) {
    scp_->from_client(raw, ops);
    return emit_files(ops);
  }
  if (terminal_) {
    terminal_->input(raw);
    return record_input(terminal_->take_recordable_input());
  }
  record_input(raw);
}

void ChannelRecording::record_input(std::string_view raw) {
  if (!record_payload_ || raw.empty()) return;
  scratch_.clear();
  input_utf8_.feed(raw, scratch_);
  emit_text("asciicast.input", 'i', scratch_);
}

void ChannelRecording::resize(int width, int height) {
  if (finished_) return;
  if (terminal_) terminal_->resize(width, height);
  emit_text("asciicast.resize", 'r', std::to_string(width) + "x" + std::to_string(height));
}

void ChannelRecording::notice(std::string_view text, bool is_stderr) {
  if (finished_ || !file_transfer_.empty()) return;
  if (terminal_ && !is_stderr) {
    terminal_->output(text);
    record_input(terminal_->take_recordable_input());
  }
  output_text(text, is_stderr);
}

void ChannelRecording::marker(std::string_view label) {
  if (!finished_) emit_text("asciicast.marker", 'm', label);
}

void ChannelRecording::emit_command(const std::string& command, const char* source) {
  if (command.empty()) return;
  log_.emit(
      EventKind{"command", {"process"}, {"start"}, "", ""},
      json{{"process", {{"command_line", command}}}, {"castgate", {{"command_source", source}}}},
      channel_, "/process/command_line");
  check_alerts("command", command);
}

void ChannelRecording::check_alerts(std::string_view applies_to, const std::string& text) {
  if (!alerts_) return;
  for (const AlertRule* rule : alerts_->match(applies_to, text)) {
    marker("alert: " + rule->name);
    json f;
    f["event"]["kind"] = "alert";
    f["event"]["severity"] = rule->severity == "high" ? 73 : rule->severity == "low" ? 21 : 47;
    f["rule"] = {{"name", rule->name}};
    f["castgate"]["alert"] = {{"severity", rule->severity},
                              {"applies_to", std::string(applies_to)},
                              {"matched", text.substr(0, 1024)}};
    log_.emit(EventKind{"alert",
                        {"intrusion_detection"},
                        {"indicator"},
                        "",
                        "risky " + std::string(applies_to) + ": " + rule->name},
              std::move(f), channel_);
  }
}

void ChannelRecording::emit_files(std::vector<FileOperation>& ops) {
  for (auto& o : ops) {
    json f;
    f["file"]["path"] = o.path;
    if (!o.target_path.empty()) f["file"]["target_path"] = o.target_path;
    if (o.mode) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", *o.mode);
      f["file"]["mode"] = mode;
    }
    if (o.size) f["file"]["size"] = *o.size;
    json details = {{"protocol", o.protocol}};
    if (!o.direction.empty()) details["direction"] = o.direction;
    if (o.action == "close") {
      details["bytes_read"] = o.bytes_read;
      details["bytes_written"] = o.bytes_written;
    }
    if (!o.status.empty()) details["status"] = o.status;
    f["castgate"]["file"] = std::move(details);
    std::string type = o.action == "remove" || o.action == "rmdir" ? "deletion"
                       : o.action == "mkdir" || o.action == "symlink" || o.action == "hardlink"
                           ? "creation"
                       : o.action == "rename" || o.action == "setstat" ? "change"
                       : o.action == "transfer" ? (o.direction == "upload" ? "creation" : "access")
                       : o.action == "open" || o.action == "list" ? "access"
                                                                  : "info";
    log_.emit(EventKind{"file." + o.action, {"file"}, {type}, o.ok ? "success" : "failure", ""},
              std::move(f), channel_);
    check_alerts("path", o.path);
    if (!o.target_path.empty() && o.action != "transfer") check_alerts("path", o.target_path);
  }
}

void ChannelRecording::finish() {
  if (finished_) return;
  std::vector<FileOperation> ops;
  if (sftp_) {
    sftp_->finish(ops);
    emit_files(ops);
    if (!sftp_->error().empty())
      log_.emit(EventKind{"recording.parse_error",
                          {"session"},
                          {"error"},
                          "failure",
                          "SFTP metadata incomplete: " + sftp_->error()},
                json::object(), channel_);
  }
  if (scp_ && !scp_->error().empty())
    log_.emit(EventKind{"recording.parse_error",
                        {"session"},
                        {"error"},
                        "failure",
                        "SCP metadata incomplete: " + scp_->error()},
              json::object(), channel_);
  if (terminal_) {
    terminal_->finish();
    record_input(terminal_->take_recordable_input());
  }
  scratch_.clear();
  stdout_utf8_.flush(scratch_);
  emit_text("asciicast.output", 'o', scratch_);
  scratch_.clear();
  stderr_utf8_.flush(scratch_);
  emit_text("asciicast.stderr", 'o', scratch_);
  scratch_.clear();
  input_utf8_.flush(scratch_);
  emit_text("asciicast.input", 'i', scratch_);
  finished_ = true;
}

}  // namespace castgate::asciicast
