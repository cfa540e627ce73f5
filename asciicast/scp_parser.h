// Follows the legacy SCP protocol (`scp -O`, rcp style) and reports file names, sizes, modes
// and direction; file contents are skipped as they pass. The stream is checked as it goes: the
// side that receives files may only send status bytes (0, or 1/2 and a message line), the side
// that sends them only well-formed C/D/T/E control lines, file data of the announced size and a
// status byte after it. Anything else sets error(): the stream is not SCP.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/file_operation.h"

namespace castgate::asciicast {

struct ScpCommand {
  bool sink = false;       // "-t": the target receives (upload); otherwise "-f": it sends
  bool recursive = false;  // "-r"
  bool directory = false;  // "-d": the target path is a directory
  std::string path;
};

// Recognises exactly what OpenSSH's scp runs on the remote side: "scp [-v] [-p] [-r] [-d] -t|-f
// [--] path". Anything else is not a file transfer: another program name ("./scp",
// "/tmp/scp"), other options, or any shell syntax (";", "|", "&", "$", backquotes, redirections,
// parentheses, braces, quotes, backslashes, newlines...), which could run more than scp.
std::optional<ScpCommand> parse_scp_command(std::string_view exec);

class ScpMetadataParser {
 public:
  explicit ScpMetadataParser(ScpCommand command);
  void from_client(std::string_view bytes, std::vector<FileOperation>& out);
  void from_server(std::string_view bytes, std::vector<FileOperation>& out);
  // Non-empty once the stream is not SCP (then nothing more is parsed).
  const std::string& error() const { return error_; }
  // Bytes taken from earlier chunks that are not yet part of a complete control line or status
  // message: recorded too when the stream turns out not to be SCP.
  std::string pending_bytes(bool client) const;

 private:
  // The side that sends files speaks control lines and data; the other side answers with
  // status bytes (0 ok, 1 warning + text, 2 error + text).
  void sender(std::string_view bytes, std::vector<FileOperation>& out);
  void receiver(std::string_view bytes, std::vector<FileOperation>& out);
  void control_line(const std::string& line, std::vector<FileOperation>& out);
  void status_message(std::string text, std::vector<FileOperation>& out);
  std::string resolve(const std::string& name) const;
  std::string alternative(const std::string& name) const;  // see FileOperation

  ScpCommand command_;
  enum class State { kLine, kData, kDataStatus } state_ = State::kLine;
  std::string line_;
  uint64_t data_left_ = 0;
  std::vector<std::string> dirs_;
  bool first_entry_ = true;
  // Status messages (from the receiver, or the sender reporting its own error).
  bool status_text_ = false;
  std::string status_;
  bool sender_status_text_ = false;  // the sender's status message after file data
  std::string sender_status_;
  std::string error_;
};

}  // namespace castgate::asciicast
