// Configuration files read by a process that must not stall on them: castgate's parent at start
// and at every reload, its workers for the lock file. Only a regular file is read (a FIFO would
// block the open or the read, a device could be endless), opened without blocking, up to a limit.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <string>

namespace castgate {

// The file's text; throws std::runtime_error naming the path and what is wrong.
std::string read_config_file(const std::string& path, size_t max_bytes);

// What stat(2) says of a path (following links, as a Kubernetes ConfigMap's are): a replaced or
// rewritten file has another stamp. A path that cannot be stat'ed has the empty stamp.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  timespec ctime{};

  static FileStamp of(const std::string& path);
  bool exists() const { return size >= 0; }
  bool operator==(const FileStamp& o) const;
};

}  // namespace castgate
