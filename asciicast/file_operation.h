// A file operation seen in an SFTP or SCP stream: metadata only, never file contents.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace castgate::asciicast {

struct FileOperation {
  std::string protocol;  // "sftp" or "scp"
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
  uint64_t bytes_read = 0;       // SFTP: bytes the user read through this handle
  uint64_t bytes_written = 0;    // SFTP: bytes the user wrote through this handle
  bool ok = true;
  std::string status;  // SFTP status name or SCP error text
};

}  // namespace castgate::asciicast
