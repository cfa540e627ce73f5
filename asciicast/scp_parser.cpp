#include "asciicast/scp_parser.h"

#include <algorithm>
#include <cstdlib>

#include "asciicast/shell_syntax.h"
#include "common/text.h"

namespace castgate::asciicast {
namespace {
constexpr size_t kMaxLine = 8192;
constexpr size_t kMaxDepth = 256;
}  // namespace

namespace {

// Characters a POSIX shell gives a meaning beyond a plain word, and '=' (an assignment before
// the command). Space, globs (* ? [ ]) and "~" are allowed: scp's own remote paths use them, and
// expanding them runs nothing.
bool shell_syntax(char c) {
  return shell_metacharacter(c) || c == '=';
}

}  // namespace

std::optional<ScpCommand> parse_scp_command(std::string_view exec) {
  for (char ch : exec)
    if (shell_syntax(ch)) return std::nullopt;
  auto words = split(exec, ' ');
  if (words.empty() || words[0] != "scp") return std::nullopt;
  ScpCommand c;
  int modes = 0;
  size_t i = 1;
  for (; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") {
      ++i;
      break;
    }
    if (w.size() < 2 || w[0] != '-') break;
    for (char f : w.substr(1)) {
      switch (f) {
        case 't':
          c.sink = true;
          ++modes;
          break;
        case 'f':
          ++modes;
          break;
        case 'r':
          c.recursive = true;
          break;
        case 'd':
          c.directory = true;
          break;
        case 'p':
        case 'v':
          break;
        default:
          return std::nullopt;  // not an option OpenSSH's scp sends
      }
    }
  }
  if (modes != 1 || i >= words.size()) return std::nullopt;
  for (; i < words.size(); ++i) c.path = c.path.empty() ? words[i] : c.path + " " + words[i];
  return c;
}

ScpMetadataParser::ScpMetadataParser(ScpCommand command) : command_(std::move(command)) {}

void ScpMetadataParser::from_client(std::string_view bytes, std::vector<FileOperation>& out) {
  if (command_.sink)
    sender(bytes, out);
  else
    receiver(bytes, out);
}

void ScpMetadataParser::from_server(std::string_view bytes, std::vector<FileOperation>& out) {
  if (command_.sink)
    receiver(bytes, out);
  else
    sender(bytes, out);
}

std::string ScpMetadataParser::resolve(const std::string& name) const {
  std::string base = command_.path;
  bool into_dir = command_.directory || command_.recursive || (!base.empty() && base.back() == '/');
  if (!command_.sink) {
    // Downloads: the first entry is the requested path itself; inside a directory, names add up.
    if (dirs_.empty()) return base;
    std::string p = base;
    for (size_t i = 1; i < dirs_.size(); ++i) p += "/" + dirs_[i];
    return p + "/" + name;
  }
  std::string p = base;
  if (into_dir || !dirs_.empty()) {
    for (const auto& d : dirs_) p += (p.empty() || p.back() == '/' ? "" : "/") + d;
    p += (p.empty() || p.back() == '/' ? "" : "/") + name;
  }
  return p;
}

std::string ScpMetadataParser::alternative(const std::string& name) const {
  const std::string& base = command_.path;
  if (!command_.sink || command_.directory || (!base.empty() && base.back() == '/')) return {};
  std::string p = base;
  auto add = [&p](const std::string& part) {
    p += (p.empty() || p.back() == '/' ? "" : "/") + part;
  };
  if (dirs_.empty()) {
    if (command_.recursive) return base;  // `scp -r f host:x` with no x: f becomes x
    add(name);                            // `scp f host:x` with x a directory: x/f
    return p;
  }
  // `scp -r d host:x` with no x: d becomes x, and what is inside d lands in x itself.
  for (size_t i = 1; i < dirs_.size(); ++i) add(dirs_[i]);
  add(name);
  return p;
}

namespace {

bool all_digits(std::string_view s, bool octal) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > (octal ? '7' : '9')) return false;
  return true;
}

// "T<mtime> <usec> <atime> <usec>"
bool times_line(std::string_view line) {
  auto parts = split(line.substr(1), ' ', false);
  if (parts.size() != 4) return false;
  for (auto& p : parts)
    if (!all_digits(p, false)) return false;
  return true;
}

}  // namespace

void ScpMetadataParser::control_line(const std::string& line, std::vector<FileOperation>& out) {
  if (line.empty()) {
    error_ = "empty SCP control line";
    return;
  }
  char kind = line[0];
  if (kind == 'T') {
    if (!times_line(line)) error_ = "malformed SCP times line";
    return;
  }
  if (kind == 'E') {
    if (line.size() != 1) {
      error_ = "malformed SCP end-of-directory line";
    } else if (dirs_.empty()) {
      error_ = "SCP end of a directory that was never started";
    } else {
      dirs_.pop_back();
    }
    return;
  }
  if (kind == '\x01' || kind == '\x02') return status_message(line.substr(1), out);
  if (kind != 'C' && kind != 'D') {
    error_ = "unexpected SCP control line";
    return;
  }
  // "C0644 1234 name" / "D0755 0 name"
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || sp1 < 2) {
    error_ = "malformed SCP control line";
    return;
  }
  std::string mode_text = line.substr(1, sp1 - 1), size_text = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string name = line.substr(sp2 + 1);
  // scp sends a base name; OpenSSH's scp refuses anything else as well.
  if (!all_digits(mode_text, true) || mode_text.size() > 5 || !all_digits(size_text, false) ||
      name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    error_ = "malformed SCP control line";
    return;
  }
  uint32_t mode = static_cast<uint32_t>(std::strtoul(mode_text.c_str(), nullptr, 8));
  uint64_t size = std::strtoull(size_text.c_str(), nullptr, 10);
  FileOperation o;
  o.protocol = "scp";
  o.direction = command_.sink ? "upload" : "download";
  o.mode = mode & 07777;
  if (kind == 'D') {
    if (size != 0 || dirs_.size() >= kMaxDepth) {
      error_ = "malformed SCP directory line";
      return;
    }
    o.action = "mkdir";
    o.path = resolve(name);
    o.alternative_path = alternative(name);
    dirs_.push_back(name);
    out.push_back(std::move(o));
    return;
  }
  o.action = "transfer";
  o.path = resolve(name);
  o.alternative_path = alternative(name);
  o.size = size;
  o.target_path = name;
  out.push_back(std::move(o));
  data_left_ = size;
  state_ = size == 0 ? State::kDataStatus : State::kData;
}

std::string ScpMetadataParser::pending_bytes(bool client) const {
  // The client sends the files in an upload (-t), the target in a download (-f).
  bool sender = client == command_.sink;
  return sender ? line_ + sender_status_ : status_;
}

void ScpMetadataParser::status_message(std::string text, std::vector<FileOperation>& out) {
  FileOperation o;
  o.protocol = "scp";
  o.action = "error";
  o.path = command_.path;
  o.ok = false;
  o.status = std::move(text);
  o.direction = command_.sink ? "upload" : "download";
  out.push_back(std::move(o));
}

void ScpMetadataParser::sender(std::string_view bytes, std::vector<FileOperation>& out) {
  while (!bytes.empty() && error_.empty()) {
    switch (state_) {
      case State::kLine: {
        size_t nl = bytes.find('\n');
        size_t take = nl == std::string_view::npos ? bytes.size() : nl;
        if (line_.size() + take > kMaxLine) {
          error_ = "SCP control line too long";
          return;
        }
        // A control line is known by its first byte: anything else is not SCP, and is said at
        // once rather than when a newline comes.
        char first = line_.empty() ? (take > 0 ? bytes[0] : '\n') : line_[0];
        if (std::string_view("CDTE\x01\x02").find(first) == std::string_view::npos) {
          error_ = "unexpected SCP control line";
          return;
        }
        line_.append(bytes.substr(0, take));
        if (nl == std::string_view::npos) return;
        bytes.remove_prefix(nl + 1);
        std::string line;
        line.swap(line_);
        control_line(line, out);
        break;
      }
      case State::kData: {
        uint64_t take = std::min<uint64_t>(data_left_, bytes.size());
        data_left_ -= take;
        bytes.remove_prefix(static_cast<size_t>(take));
        if (data_left_ == 0) state_ = State::kDataStatus;
        break;
      }
      case State::kDataStatus: {
        // After the data, the sender says 0 (all read), or 1/2 and why it could not.
        if (sender_status_text_) {
          size_t nl = bytes.find('\n');
          size_t take = nl == std::string_view::npos ? bytes.size() : nl;
          if (sender_status_.size() + take > kMaxLine) {
            error_ = "SCP status message too long";
            return;
          }
          sender_status_.append(bytes.substr(0, take));
          if (nl == std::string_view::npos) return;
          bytes.remove_prefix(nl + 1);
          status_message(std::move(sender_status_), out);
          sender_status_.clear();
          sender_status_text_ = false;
          state_ = State::kLine;
          break;
        }
        char c = bytes[0];
        bytes.remove_prefix(1);
        if (c == 0) {
          state_ = State::kLine;
        } else if (c == 1 || c == 2) {
          sender_status_text_ = true;
        } else {
          error_ = "unexpected byte after SCP file data";
        }
        break;
      }
    }
  }
}

void ScpMetadataParser::receiver(std::string_view bytes, std::vector<FileOperation>& out) {
  for (char c : bytes) {
    if (!error_.empty()) return;
    if (status_text_) {
      if (c == '\n') {
        status_message(std::move(status_), out);
        status_.clear();
        status_text_ = false;
      } else if (status_.size() >= kMaxLine) {
        error_ = "SCP status message too long";
      } else {
        status_ += c;
      }
      continue;
    }
    if (c == 1 || c == 2) {
      status_text_ = true;
    } else if (c != 0) {
      error_ = "the receiving side sent something other than SCP status bytes";
    }
  }
}

}  // namespace castgate::asciicast
