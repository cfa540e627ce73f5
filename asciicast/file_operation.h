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
  std::string target_path;       // rename/symlink/hardlink destination
  std::string direction;         // "upload" (user to target), "download", "read-write" or empty
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint64_t> size;  // announced size (SCP) or attribute size
  uint64_t bytes_read = 0;       // SFTP: bytes the user read through this handle
  uint64_t bytes_written = 0;    // SFTP: bytes the user wrote through this handle
  bool ok = true;
  std::string status;  // SFTP status name or SCP error text
};

}  // namespace castgate::asciicast
