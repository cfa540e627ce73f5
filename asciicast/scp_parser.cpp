#include "asciicast/scp_parser.h"

#include <algorithm>
#include <cstdlib>

#include "common/text.h"

namespace castgate::asciicast {
namespace {
constexpr size_t kMaxLine = 8192;
constexpr size_t kMaxDepth = 256;
}  // namespace

std::optional<ScpCommand> parse_scp_command(std::string_view exec) {
  auto words = split(exec, ' ');
  if (words.empty()) return std::nullopt;
  const std::string& prog = words[0];
  if (prog != "scp" && !(prog.size() > 4 && prog.compare(prog.size() - 4, 4, "/scp") == 0))
    return std::nullopt;
  ScpCommand c;
  bool mode = false, end_of_options = false;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!end_of_options && w == "--") {
      end_of_options = true;
    } else if (!end_of_options && w.size() > 1 && w[0] == '-') {
      for (char f : w.substr(1)) {
        if (f == 't') c.sink = mode = true;
        if (f == 'f') mode = true;
        if (f == 'r') c.recursive = true;
        if (f == 'd') c.directory = true;
      }
    } else {
      c.path = c.path.empty() ? w : c.path + " " + w;
    }
  }
  if (!mode) return std::nullopt;
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

void ScpMetadataParser::control_line(const std::string& line, std::vector<FileOperation>& out) {
  if (line.empty()) return;
  char kind = line[0];
  if (kind == 'T') return;  // times for the next entry
  if (kind == 'E') {
    if (!dirs_.empty()) dirs_.pop_back();
    return;
  }
  if (kind == '\x01' || kind == '\x02') return;  // the sender reporting its own error
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
  char* end = nullptr;
  uint32_t mode = static_cast<uint32_t>(std::strtoul(line.substr(1, sp1 - 1).c_str(), &end, 8));
  uint64_t size = std::strtoull(line.substr(sp1 + 1, sp2 - sp1 - 1).c_str(), &end, 10);
  std::string name = line.substr(sp2 + 1);
  FileOperation o;
  o.protocol = "scp";
  o.direction = command_.sink ? "upload" : "download";
  o.mode = mode & 07777;
  if (kind == 'D') {
    o.action = "mkdir";
    o.path = resolve(name);
    if (dirs_.size() < kMaxDepth) dirs_.push_back(name);
    out.push_back(std::move(o));
    return;
  }
  o.action = "transfer";
  o.path = resolve(name);
  o.size = size;
  o.target_path = name;
  out.push_back(std::move(o));
  data_left_ = size;
  state_ = State::kData;
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
      case State::kDataStatus:
        bytes.remove_prefix(1);  // the sender's status byte after the data
        state_ = State::kLine;
        break;
    }
  }
}

void ScpMetadataParser::receiver(std::string_view bytes, std::vector<FileOperation>& out) {
  for (char c : bytes) {
    if (status_text_) {
      if (c == '\n' || status_.size() >= kMaxLine) {
        FileOperation o;
        o.protocol = "scp";
        o.action = "error";
        o.path = command_.path;
        o.ok = false;
        o.status = status_;
        o.direction = command_.sink ? "upload" : "download";
        out.push_back(std::move(o));
        status_text_ = false;
        status_.clear();
      } else {
        status_ += c;
      }
      continue;
    }
    if (c == 1 || c == 2) {
      status_text_ = true;
      status_code_ = c;
    }
  }
}

}  // namespace castgate::asciicast
