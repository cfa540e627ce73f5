// Follows git over SSH (upload-pack, receive-pack, upload-archive) and rsync (`rsync --server`)
// from their protocol data, for metadata only: which repository or path, which way, how many
// bytes, and for git the refs advertised, wanted and updated with the target's verdict. Packs and
// file data are counted as they pass, never kept or inflated.
//
// A follower never decides what is recorded: the channel is recorded as any exec channel is; the
// follower only adds `file.*` metadata. It checks that the data is the protocol its command
// claims, strictly (pkt-line framing, each packet of the kind the exchange expects there, a pack
// header; rsync's version, compatibility flags, negotiation strings and multiplexed frames). From
// the first byte that is not, error() says why and nothing more is parsed. Memory is bounded:
// at most kMaxPending bytes are held per direction (an incomplete pkt-line, or bytes that wait for
// what the other side says first), and lists kept for the record are capped.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/file_operation.h"

namespace castgate::asciicast {

enum class GitService { kUploadPack, kReceivePack, kUploadArchive };
std::string_view to_string(GitService service);  // "upload-pack", ...

struct GitCommand {
  GitService service = GitService::kUploadPack;
  std::string repository;
};

// Recognises exactly what git runs on the remote side: `git-upload-pack '/path.git'` (also
// `git upload-pack`, and receive-pack, upload-archive), the path single-quoted as git quotes it
// (a quote inside written '\''), or unquoted if it holds no shell syntax at all. Anything else
// around the path (";", "|", "$", a second argument, another program) is not git.
std::optional<GitCommand> parse_git_command(std::string_view exec);

struct RsyncCommand {
  bool sender = false;             // "--sender": the target sends (a download)
  std::string options;             // the options as the client sent them, space-separated
  std::string client_info;         // what follows "e" in a short-option cluster ("." + letters)
  bool compress = false;           // -z / --compress: both sides negotiate a compressor
  bool checksum_choice = false;    // --checksum-choice / --cc: no checksum negotiation string
  bool compress_choice = false;    // --compress-choice / --zc: no compressor negotiation string
  std::vector<std::string> paths;  // after the "." that ends the options
};

// Recognises what rsync runs on the remote side: `rsync --server [--sender] OPTIONS . PATH...`,
// words separated by single spaces, no shell syntax (a path rsync had to escape is not followed).
// The daemon-over-SSH form (`--server --daemon`) is not followed.
std::optional<RsyncCommand> parse_rsync_command(std::string_view exec);

class TransferFollower {
 public:
  // Pending bytes held per direction, at most (a pkt-line is at most 65520 bytes).
  static constexpr size_t kMaxPending = 2 * 65536;

  virtual ~TransferFollower() = default;
  // Each direction's bytes, exactly as relayed (stdout of the exec for the target).
  void from_user(std::string_view bytes, std::vector<FileOperation>& out);
  void from_target(std::string_view bytes, std::vector<FileOperation>& out);
  // The channel ended: the summary operation (a `transfer`), unless error() said why not.
  void finish(std::vector<FileOperation>& out);
  // Non-empty once the data is not the protocol: one `error` operation said so, nothing follows.
  const std::string& error() const { return error_; }
  const std::string& protocol() const { return protocol_; }
  // The user sends the files (git push, rsync to the target).
  bool upload() const { return operation().direction == "upload"; }

 protected:
  enum Side { kUser = 0, kTarget = 1 };
  explicit TransferFollower(std::string protocol) : protocol_(std::move(protocol)) {}
  // Parses from the start of `bytes` and returns how many it consumed. What it leaves is offered
  // again with more bytes (an incomplete packet) or once the other side moved on (it needs what
  // that side says first: git's capabilities, rsync's version). Sets error_ when it is not the
  // protocol.
  virtual size_t parse(Side side, std::string_view bytes) = 0;
  // The channel ended: checks that need the whole exchange (may set error_).
  virtual void end() {}
  // The operation describing the whole transfer, at the end.
  virtual FileOperation summary() = 0;
  // The operation's common part: protocol, path, direction and bytes.
  virtual FileOperation operation() const = 0;

  uint64_t bytes_[2] = {0, 0};
  std::string error_;

 private:
  void feed(Side side, std::string_view bytes, std::vector<FileOperation>& out);
  // Returns whether anything was consumed.
  bool consume(Side side, std::string_view bytes);

  std::string protocol_;
  std::string pending_[2];
  bool done_ = false;
};

// A follower for `exec` if it is exactly a git or rsync server command; null otherwise.
std::unique_ptr<TransferFollower> make_transfer_follower(std::string_view exec);

// The event members of a git or rsync operation: castgate.git or castgate.rsync (docs/events.md).
void add_transfer_fields(const FileOperation& o, nlohmann::json& castgate);

}  // namespace castgate::asciicast
