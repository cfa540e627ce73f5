#include "asciicast/channel_recording.h"

#include <cstdio>

#include "asciicast/json_text.h"
#include "asciicast/scp_parser.h"
#include "asciicast/secret_answer_masker.h"
#include "asciicast/sftp_parser.h"
#include "asciicast/stream_summary.h"
#include "asciicast/tar_follower.h"
#include "asciicast/terminal_tracker.h"
#include "asciicast/transfer_follower.h"
#include "asciicast/untrusted_text.h"

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
  // Only candidates here: the data still has to prove it (see fall_back). A terminal is never a
  // file transfer (scp and sftp do not ask for one); what runs in it is recorded in full.
  if (!header.pty && header.kind == ChannelKind::kSubsystem && header.command == "sftp") {
    file_transfer_ = "sftp";
    sftp_ = std::make_unique<SftpMetadataParser>();
  } else if (!header.pty && header.kind == ChannelKind::kExec) {
    if (auto scp = parse_scp_command(header.command)) {
      file_transfer_ = "scp";
      scp_ = std::make_unique<ScpMetadataParser>(*scp);
    }
  }
  // git and rsync servers: followed for metadata; the channel is recorded as any other.
  if (!header.pty && header.kind == ChannelKind::kExec && !scp_)
    transfer_ = make_transfer_follower(header.command);
  // (Without payload recording, a benchmark's relay alone, nothing is summarised either.)
  if (!header.pty && header.kind == ChannelKind::kExec && header.summarize_binary && !scp_ &&
      record_payload_) {
    output_summary_ = std::make_unique<StreamSummary>(log_, channel_, StreamDirection::kOutput);
  }
  // Uploads to a command that only writes its input to files: metadata (the file, or the
  // archive's members), and its binary input as a summary; never where the target could run it.
  if (!header.pty && header.kind == ChannelKind::kExec && !scp_ && !transfer_)
    if (auto sink = parse_upload_sink(header.command)) {
      upload_ = std::move(sink);
      if (upload_->program == "tar") tar_ = std::make_unique<TarFollower>(upload_->path);
    }
  if (output_summary_ && ((transfer_ && transfer_->upload()) || upload_))
    input_summary_ = std::make_unique<StreamSummary>(log_, channel_, StreamDirection::kInput);
  if (header.pty)
    terminal_ = std::make_unique<TerminalTracker>(header.width, header.height);
  else
    masker_ = std::make_unique<SecretAnswerMasker>();

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
  fields["castgate"]["channel_kind"] = to_string(header.kind);
  fields["castgate"]["pty"] = header.pty;
  if (!file_transfer_.empty()) fields["castgate"]["file_transfer"] = file_transfer_;
  if (output_summary_) fields["castgate"]["binary_streams"] = "summary";
  log_.emit(EventKind{"asciicast.header", "", ""}, std::move(fields), channel_);
  if (header.kind == ChannelKind::kExec) emit_command(header.command, "exec");
  // The file `cat > PATH` or `dd of=PATH` writes: checked against the path rules now, before
  // its bytes arrive (its file.transfer comes at the end, with the size).
  if (upload_ && !tar_) check_alerts("path", upload_->path);
}

void ChannelRecording::fall_back(const std::string& why) {
  std::string protocol = file_transfer_;
  file_transfer_.clear();
  sftp_.reset();
  scp_.reset();
  std::string reason = protocol + " protocol mismatch (" + why + "); recording the channel in full";
  log_.emit(EventKind{"recording.fallback", "", reason},
            json{{"castgate", {{"fallback", {{"protocol", protocol}, {"why", why}}}}}}, channel_);
  marker("alert: file transfer protocol mismatch");
  json f;
  f["event"]["kind"] = "alert";
  f["event"]["severity"] = 73;
  f["rule"] = {{"name", "file-transfer-protocol-mismatch"}};
  f["castgate"]["alert"] = {{"severity", "high"}, {"applies_to", "channel"}, {"matched", why}};
  log_.emit(EventKind{"alert", "", reason}, std::move(f), channel_);
}

// Data of a channel followed as a file transfer. Returns having recorded it as metadata, or
// having fallen back to recording it (and everything after it) in full.
void ChannelRecording::file_data(std::string_view raw, bool from_user) {
  std::vector<FileOperation> ops;
  const std::string* error = nullptr;
  // What earlier chunks left unfinished in this direction: if this chunk shows that the stream
  // is not the protocol, those bytes are recorded with it.
  std::string earlier = sftp_ ? sftp_->pending_bytes(from_user) : scp_->pending_bytes(from_user);
  if (sftp_) {
    from_user ? sftp_->from_client(raw, ops) : sftp_->from_server(raw, ops);
    error = &sftp_->error();
  } else {
    from_user ? scp_->from_client(raw, ops) : scp_->from_server(raw, ops);
    error = &scp_->error();
  }
  emit_files(ops);
  if (error->empty()) return;
  std::string why = *error;
  fall_back(why);  // resets the parsers
  earlier.append(raw);
  if (from_user) {
    record_input(masker_->input(earlier));
  } else {
    record_input(masker_->output(earlier));
    if (record_payload_) output_text(earlier, false);
  }
}

void ChannelRecording::emit_text(std::string_view action, char code, std::string_view text) {
  if (text.empty()) return;
  int64_t t = elapsed_micros();
  if (t < last_t_) t = last_t_;  // times never go backwards
  last_t_ = t;
  while (!text.empty()) text.remove_prefix(log_.emit_asciicast(channel_, action, t, code, text));
}

void ChannelRecording::output_text(std::string_view raw, bool is_stderr) {
  emit_text(is_stderr ? "asciicast.stderr" : "asciicast.output", 'o',
            (is_stderr ? stderr_utf8_ : stdout_utf8_).sanitize(raw, scratch_));
}

void ChannelRecording::from_target(std::string_view raw, bool is_stderr) {
  if (finished_) return;
  if (transfer_ && !is_stderr) follow_transfer(raw, false);
  if ((sftp_ || scp_) && !is_stderr) return file_data(raw, false);
  if (!is_stderr && summarized(output_summary_.get(), stdout_utf8_, "asciicast.output", raw)) {
    record_input(masker_->output(raw));  // held input first: the program answered it
    return;
  }
  std::vector<std::string> commands;
  if (terminal_ && !is_stderr) {
    commands = terminal_->output(raw);
    record_input(terminal_->take_recordable_input());  // typed before this output echoed it
  } else if (masker_) {
    record_input(masker_->output(raw));  // held input first: the program answered it
  }
  if (record_payload_) output_text(raw, is_stderr);
  for (const auto& c : commands) emit_command(c, "terminal");
}

void ChannelRecording::from_user(std::string_view raw) {
  if (finished_) return;
  if (transfer_) follow_transfer(raw, true);
  if (sftp_ || scp_) return file_data(raw, true);
  if (terminal_) {
    terminal_->input(raw);
    return record_input(terminal_->take_recordable_input());
  }
  if (upload_) upload_bytes_ += raw.size();
  if (tar_ && tar_->error().empty()) {
    std::vector<FileOperation> ops;
    tar_->feed(raw, ops);
    emit_files(ops);  // the members whose headers this completed, or the error
  }
  // A push, an rsync upload or an archive whose data stopped being that: in full from here.
  if (input_summary_ &&
      ((transfer_ && !transfer_->error().empty()) || (tar_ && !tar_->error().empty())))
    end_summary(input_summary_);
  if (summarized(input_summary_.get(), input_utf8_, "asciicast.input", raw)) return;
  record_input(masker_->input(raw));
}

bool ChannelRecording::summarized(StreamSummary* summary, Utf8Sanitizer& utf8,
                                  std::string_view action, std::string_view raw) {
  if (!summary || raw.empty()) return false;
  // A few bytes never start a run (a control character printed alone, the rest of a character
  // cut by the previous read): they cost little recorded in full, and a run costs events.
  if ((!summary->in_run() && raw.size() < StreamSummary::kMinRunStart) || !is_binary_chunk(raw)) {
    summary->text(raw.size(), clock_.steady_now());
    if (auto m = summary->take_marker()) marker(*m);
    return false;
  }
  if (!summary->in_run()) {
    flush_utf8(utf8, action);  // text cut before the run (a character's first bytes), as it was
  }
  summary->binary(raw, clock_.steady_now());
  return true;
}

void ChannelRecording::flush_utf8(Utf8Sanitizer& utf8, std::string_view action) {
  scratch_.clear();
  utf8.flush(scratch_);
  emit_text(action, action == "asciicast.input" ? 'i' : 'o', scratch_);
}

void ChannelRecording::end_summary(std::unique_ptr<StreamSummary>& summary) {
  if (!summary) return;
  summary->finish(clock_.steady_now());
  if (auto m = summary->take_marker()) marker(*m);
  summary.reset();
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
  if (finished_ || (!file_transfer_.empty() && !is_stderr)) return;
  if (terminal_ && !is_stderr) {
    terminal_->output(text);
    record_input(terminal_->take_recordable_input());
  }
  output_text(text, is_stderr);
}

void ChannelRecording::marker(std::string_view label) {
  if (!finished_) emit_text("asciicast.marker", 'm', valid_utf8(label));
}

void ChannelRecording::emit_command(const std::string& command, const char* source) {
  if (command.empty()) return;
  log_.emit(
      EventKind{"command", "", ""},
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
                              {"matched", text.substr(0, utf8_prefix_at_most(text, 1024))}};
    log_.emit(EventKind{"alert", "", "risky " + std::string(applies_to) + ": " + rule->name},
              std::move(f), channel_);
  }
}

void ChannelRecording::emit_files(std::vector<FileOperation>& ops, bool check_paths) {
  for (auto& o : ops) {
    json f;
    f["file"]["path"] = o.path;
    // ECS file.name and file.directory, as the path is written (remote paths are not resolved).
    if (auto slash = o.path.rfind('/'); slash == std::string::npos) {
      f["file"]["name"] = o.path;
    } else {
      if (slash + 1 < o.path.size()) f["file"]["name"] = o.path.substr(slash + 1);
      f["file"]["directory"] = slash == 0 ? "/" : o.path.substr(0, slash);
    }
    if (!o.target_path.empty()) f["file"]["target_path"] = o.target_path;
    if (o.mode) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", *o.mode);
      f["file"]["mode"] = mode;
    }
    if (o.size) f["file"]["size"] = *o.size;
    json details = {{"protocol", o.protocol}};
    if (!o.direction.empty()) details["direction"] = o.direction;
    if (!o.alternative_path.empty()) details["alternative_path"] = o.alternative_path;
    if (o.action == "close" || o.git || o.rsync) {
      details["bytes_read"] = o.bytes_read;
      details["bytes_written"] = o.bytes_written;
    }
    if (!o.status.empty()) details["status"] = o.status;
    f["castgate"]["file"] = std::move(details);
    add_transfer_fields(o, f["castgate"]);  // castgate.git, castgate.rsync
    EventKind kind{"file." + o.action, o.ok ? "success" : "failure", ""};
    if (o.action == "transfer" && o.direction == "upload") kind.type = {"creation"};
    log_.emit(kind, std::move(f), channel_);
    if (!check_paths) continue;
    check_alerts("path", o.path);
    if (!o.alternative_path.empty()) check_alerts("path", o.alternative_path);
    if (!o.target_path.empty() && o.action != "transfer") check_alerts("path", o.target_path);
  }
}

void ChannelRecording::follow_transfer(std::string_view raw, bool from_user) {
  std::vector<FileOperation> ops;
  from_user ? transfer_->from_user(raw, ops) : transfer_->from_target(raw, ops);
  emit_files(ops);  // only the error operation, if the data stopped being the protocol
}

void ChannelRecording::finish() {
  if (finished_) return;
  end_summary(output_summary_);
  end_summary(input_summary_);
  std::vector<FileOperation> ops;
  if (sftp_) {
    sftp_->finish(ops);
    emit_files(ops);
  }
  if (transfer_) {
    ops.clear();
    transfer_->finish(ops);
    emit_files(ops);
  }
  if (tar_) {
    ops.clear();
    tar_->finish(ops);
    emit_files(ops);
  } else if (upload_) {  // cat > PATH, dd of=PATH: the file and what was sent to it
    FileOperation o;
    o.protocol = "exec";
    o.action = "transfer";
    o.direction = "upload";
    o.path = upload_->path;
    o.size = upload_bytes_;
    ops.assign(1, std::move(o));
    emit_files(ops, false);  // its path was checked when the channel started
  }
  if (terminal_) {
    terminal_->finish();
    record_input(terminal_->take_recordable_input());
  }
  if (masker_) record_input(masker_->finish());
  flush_utf8(stdout_utf8_, "asciicast.output");
  flush_utf8(stderr_utf8_, "asciicast.stderr");
  flush_utf8(input_utf8_, "asciicast.input");
  finished_ = true;
}

}  // namespace castgate::asciicast
