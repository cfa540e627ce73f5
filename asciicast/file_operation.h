// A file operation seen in an SFTP, SCP, git or rsync stream: metadata only, never file contents.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace castgate::asciicast {

// A ref a git push asked to update, with the target's verdict (report-status).
struct GitRefUpdate {
  std::string name;
  std::string old_id;  // all zeros: the ref is created
  std::string new_id;  // all zeros: the ref is deleted
  std::string status;  // "ok", "ng <reason>", or empty when the target did not report
};

// What a git transfer did (FileOperation::git).
struct GitTransfer {
  std::string service;                   // "upload-pack", "receive-pack", "upload-archive"
  int version = 0;                       // git protocol version the target answered with: 0, 1 or 2
  uint64_t advertised_refs = 0;          // refs the target listed (v0/v1 advertisement, v2 ls-refs)
  uint64_t wants = 0;                    // fetch: object ids (and v2 want-refs) the user asked for
  uint64_t haves = 0;                    // fetch: object ids the user said it has
  std::vector<std::string> wanted;       // the first wanted ids or refs (capped)
  uint64_t ref_updates = 0;              // push: refs the user asked to update
  std::vector<GitRefUpdate> refs;        // the first of them (capped)
  std::optional<uint32_t> pack_objects;  // objects the pack header announced
  uint64_t pack_bytes = 0;               // bytes of pack data (or archive data) seen
};

// What an rsync transfer did (FileOperation::rsync).
struct RsyncTransfer {
  int version = 0;  // negotiated protocol version
  std::string options;
  std::vector<std::string> paths;
};

struct FileOperation {
  std::string protocol;  // "sftp", "scp", "git" or "rsync"
  std::string action;    // open, close, remove, rename, mkdir, rmdir, setstat, symlink, hardlink,
                         // list, transfer, error
  std::string path;
  std::string target_path;  // rename/symlink/hardlink destination
  // SCP upload: where it lands if the destination turns out to be (or not to be) a directory,
  // which only the target knows (`scp f host:.ssh` writes .ssh/f if .ssh is one).
  std::string alternative_path;
  std::string direction;         // "upload" (user to target), "download", "read-write" or empty
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint64_t> size;  // announced size (SCP) or attribute size
  uint64_t bytes_read = 0;       // SFTP: bytes the user read through this handle; git, rsync:
                                 // bytes the target sent on the channel
  uint64_t bytes_written = 0;    // SFTP: bytes the user wrote through this handle; git, rsync:
                                 // bytes the user sent on the channel
  bool ok = true;
  std::string status;  // SFTP status name, SCP error text, git/rsync failure or why not followed
  std::optional<GitTransfer> git;
  std::optional<RsyncTransfer> rsync;
};

}  // namespace castgate::asciicast
