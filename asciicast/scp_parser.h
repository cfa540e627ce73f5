// Follows the legacy SCP protocol (`scp -O`, rcp style) and reports file names, sizes, modes
// and direction; file contents are skipped as they pass.
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

// Recognises "scp [options] -t|-f [--] path" as run by OpenSSH's scp on the remote side.
std::optional<ScpCommand> parse_scp_command(std::string_view exec);

class ScpMetadataParser {
 public:
  explicit ScpMetadataParser(ScpCommand command);
  void from_client(std::string_view bytes, std::vector<FileOperation>& out);
  void from_server(std::string_view bytes, std::vector<FileOperation>& out);
  const std::string& error() const { return error_; }

 private:
  // The side that sends files speaks control lines and data; the other side answers with
  // status bytes (0 ok, 1 warning + text, 2 error + text).
  void sender(std::string_view bytes, std::vector<FileOperation>& out);
  void receiver(std::string_view bytes, std::vector<FileOperation>& out);
  void control_line(const std::string& line, std::vector<FileOperation>& out);
  std::string resolve(const std::string& name) const;

  ScpCommand command_;
  enum class State { kLine, kData, kDataStatus } state_ = State::kLine;
  std::string line_;
  uint64_t data_left_ = 0;
  std::vector<std::string> dirs_;
  bool first_entry_ = true;
  // Receiver side: status messages.
  bool status_text_ = false;
  int status_code_ = 0;
  std::string status_;
  std::string error_;
};

}  // namespace castgate::asciicast
