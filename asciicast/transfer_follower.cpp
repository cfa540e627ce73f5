#include "asciicast/transfer_follower.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "asciicast/git_follower.h"
#include "asciicast/rsync_follower.h"
#include "asciicast/shell_syntax.h"
#include "asciicast/wire_text.h"
#include "common/text.h"

namespace castgate::asciicast {
namespace transfer_detail {

// Git's quoting of a path for the remote shell (sq_quote_buf): the whole path in single quotes,
// each quote inside as '\'' (and each "!" as '\!'). Returns false for anything else.
bool git_unquote(std::string_view arg, std::string& out) {
  if (arg.empty() || arg[0] != '\'') {
    if (!plain_word(arg)) return false;
    out = arg;
    return true;
  }
  out.clear();
  size_t i = 1;
  for (;;) {
    size_t q = arg.find('\'', i);
    if (q == std::string_view::npos) return false;
    out.append(arg.substr(i, q - i));
    i = q + 1;
    if (i == arg.size()) break;
    // Outside the quotes only an escaped quote or "!" may stand, then the quotes open again.
    if (arg.size() - i < 3 || arg[i] != '\\' || (arg[i + 1] != '\'' && arg[i + 1] != '!') ||
        arg[i + 2] != '\'')
      return false;
    out += arg[i + 1];
    i += 3;
  }
  if (out.empty()) return false;
  for (char c : out)
    if (c == '\0' || c == '\n' || c == '\r') return false;
  return true;
}

}  // namespace transfer_detail

std::string_view to_string(GitService service) {
  switch (service) {
    case GitService::kUploadPack:
      return "upload-pack";
    case GitService::kReceivePack:
      return "receive-pack";
    case GitService::kUploadArchive:
      return "upload-archive";
  }
  return "upload-pack";
}

std::optional<GitCommand> parse_git_command(std::string_view exec) {
  std::string_view program, rest;
  auto sp = exec.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  program = exec.substr(0, sp);
  rest = exec.substr(sp + 1);
  if (program == "git") {  // "git upload-pack 'path'"
    sp = rest.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    program = rest.substr(0, sp);
    rest = rest.substr(sp + 1);
  } else if (wire::starts_with(program, "git-")) {
    program.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  GitCommand c;
  if (program == "upload-pack") {
    c.service = GitService::kUploadPack;
  } else if (program == "receive-pack") {
    c.service = GitService::kReceivePack;
  } else if (program == "upload-archive") {
    c.service = GitService::kUploadArchive;
  } else {
    return std::nullopt;
  }
  if (!transfer_detail::git_unquote(rest, c.repository)) return std::nullopt;
  return c;
}

// Words as rsync sends them (plain_word): never globs or shell syntax unquoted. An assignment
// only counts before the command name, which must be "rsync", so '=' may stand in long options.
std::optional<RsyncCommand> parse_rsync_command(std::string_view exec) {
  auto split = simple_words(exec);  // never trimmed: "rsync --server\n . x" is two commands
  if (!split) return std::nullopt;
  std::vector<std::string> words(split->begin(), split->end());
  if (words.size() < 4 || words[0] != "rsync" || words[1] != "--server") return std::nullopt;
  RsyncCommand c;
  size_t i = 2;
  if (words[i] == "--sender") {
    c.sender = true;
    ++i;
  }
  bool end_of_options = false;
  for (; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!plain_word(w)) return std::nullopt;
    if (w == ".") {
      end_of_options = true;
      ++i;
      break;
    }
    if (w.size() < 2 || w[0] != '-') return std::nullopt;
    if (w == "--daemon" || w == "--server" || w == "--sender") return std::nullopt;
    c.options += (c.options.empty() ? "" : " ") + w;
    if (w[1] == '-') {
      std::string_view name = std::string_view(w).substr(2, w.find('=') - 2);
      if (name.empty()) return std::nullopt;
      for (char ch : name)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
          return std::nullopt;
      if (name == "compress" || name == "new-compress" || name == "old-compress") c.compress = true;
      if (name == "checksum-choice" || name == "cc") c.checksum_choice = true;
      if (name == "compress-choice" || name == "zc") c.compress_choice = true;
      continue;
    }
    for (size_t k = 1; k < w.size(); ++k) {
      char f = w[k];
      if (f == 'e') {  // the client's info: the rest of the cluster
        c.client_info = w.substr(k + 1);
        break;
      }
      if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z') || (f >= '0' && f <= '9')))
        return std::nullopt;
      if (f == 'z') c.compress = true;
    }
  }
  if (!end_of_options || i >= words.size()) return std::nullopt;
  for (; i < words.size(); ++i) {
    if (!plain_word(words[i])) return std::nullopt;
    c.paths.push_back(words[i]);
  }
  return c;
}

void TransferFollower::from_user(std::string_view bytes, std::vector<FileOperation>& out) {
  feed(kUser, bytes, out);
}

void TransferFollower::from_target(std::string_view bytes, std::vector<FileOperation>& out) {
  feed(kTarget, bytes, out);
}

bool TransferFollower::consume(Side side, std::string_view bytes) {
  std::string& p = pending_[side];
  bool progress = false;
  while (error_.empty()) {
    if (p.empty()) {
      size_t n = parse(side, bytes);
      progress |= n > 0;
      bytes.remove_prefix(n);
      if (bytes.size() > kMaxPending) {
        error_ = protocol_ + ": more than " + std::to_string(kMaxPending) +
                 " bytes held waiting (an incomplete packet, or the other side)";
        return progress;
      }
      p.assign(bytes);
      return progress;
    }
    size_t take = std::min(bytes.size(), kMaxPending - p.size());
    p.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    size_t n = parse(side, p);
    progress |= n > 0;
    p.erase(0, n);
    if (bytes.empty()) return progress;
    if (n == 0) {
      error_ = protocol_ + ": more than " + std::to_string(kMaxPending) +
               " bytes held waiting (an incomplete packet, or the other side)";
      return progress;
    }
  }
  return progress;
}

void TransferFollower::feed(Side side, std::string_view bytes, std::vector<FileOperation>& out) {
  bytes_[side] += bytes.size();
  if (done_ || !error_.empty()) return;
  consume(side, bytes);
  // Bytes one side held back may wait for what this side has just said; and the other way round.
  for (int round = 0; round < 4 && error_.empty(); ++round) {
    bool moved = false;
    for (Side s : {kUser, kTarget})
      if (!pending_[s].empty()) moved |= consume(s, {});
    if (!moved) break;
  }
  if (!error_.empty()) {
    pending_[0].clear();
    pending_[0].shrink_to_fit();
    pending_[1].clear();
    pending_[1].shrink_to_fit();
    FileOperation o = operation();
    o.action = "error";
    o.ok = false;
    o.status = error_;
    out.push_back(std::move(o));
  }
}

void TransferFollower::finish(std::vector<FileOperation>& out) {
  if (done_) return;
  done_ = true;
  if (!error_.empty()) return;
  end();
  if (error_.empty()) return out.push_back(summary());
  FileOperation o = operation();
  o.action = "error";
  o.ok = false;
  o.status = error_;
  out.push_back(std::move(o));
}

std::unique_ptr<TransferFollower> make_transfer_follower(std::string_view exec) {
  if (auto git = parse_git_command(exec)) return make_git_follower(std::move(*git));
  if (auto rsync = parse_rsync_command(exec)) return make_rsync_follower(std::move(*rsync));
  return nullptr;
}

void add_transfer_fields(const FileOperation& o, nlohmann::json& castgate) {
  using nlohmann::json;
  if (o.git) {
    const GitTransfer& g = *o.git;
    json j = {{"service", g.service},
              {"version", g.version},
              {"advertised_refs", g.advertised_refs},
              {"pack_bytes", g.pack_bytes}};
    if (g.pack_objects) j["pack_objects"] = *g.pack_objects;
    if (g.service == "upload-pack") {
      j["wants"] = g.wants;
      j["haves"] = g.haves;
      if (!g.wanted.empty()) j["wanted"] = g.wanted;
    }
    if (g.service == "receive-pack") {
      j["ref_updates"] = g.ref_updates;
      json refs = json::array();
      for (const auto& r : g.refs) {
        json ref = {{"name", r.name}, {"old", r.old_id}, {"new", r.new_id}};
        if (!r.status.empty()) ref["status"] = r.status;
        refs.push_back(std::move(ref));
      }
      if (!refs.empty()) j["refs"] = std::move(refs);
    }
    castgate["git"] = std::move(j);
  }
  if (o.rsync) {
    json j = {{"version", o.rsync->version}, {"paths", o.rsync->paths}};
    if (!o.rsync->options.empty()) j["options"] = o.rsync->options;
    castgate["rsync"] = std::move(j);
  }
}

}  // namespace castgate::asciicast
