// The locks in force (locks.h), shared by a worker process's threads, and the watcher that reloads
// them when their file changes.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/config_file.h"
#include "gateway/locks.h"

namespace castgate {

class LockState {
 public:
  std::shared_ptr<const Locks> get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void set(std::shared_ptr<const Locks> locks) {
    std::lock_guard lock(mu_);
    current_ = std::move(locks);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Locks> current_;  // null: no lock file configured
};

// Polled (poll(), about once a second) by a worker process: a changed file (another inode, size
// or modification time: a ConfigMap's update swaps a symlink) is read and parsed again. A file
// that cannot be read or parsed leaves the locks in force as they were (an error is logged):
// lifting every lock takes a file that says so ({"locks": []}).
class LockWatcher {
 public:
  LockWatcher(std::string path, LockState& state);
  // Returns the new locks when the file changed and parsed, else null.
  std::shared_ptr<const Locks> poll();

 private:
  std::string path_;
  LockState& state_;
  FileStamp seen_;
  bool failed_ = false;  // the last change could not be read: logged once per change
};

// Reads and parses the lock file (at start-up: an unreadable or invalid file is an error). Only a
// regular file of at most 1 MiB is read.
std::shared_ptr<const Locks> load_locks(const std::string& path);

}  // namespace castgate
