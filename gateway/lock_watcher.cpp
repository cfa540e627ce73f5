#include "gateway/lock_watcher.h"

#include "common/config_file.h"
#include "common/log.h"

namespace castgate {

std::shared_ptr<const Locks> load_locks(const std::string& path) {
  return std::make_shared<const Locks>(Locks::parse(read_config_file(path, 1 << 20), path));
}

// Nothing is taken as seen: the first poll reads the file, so a worker started after a change
// (a replacement for one that died) enforces the locks in force now, not those at start-up.
LockWatcher::LockWatcher(std::string path, LockState& state)
    : path_(std::move(path)), state_(state) {}

std::shared_ptr<const Locks> LockWatcher::poll() {
  auto now = FileStamp::of(path_);
  if (!now.exists()) {
    if (!failed_) log::error("locks: cannot read " + path_ + "; the locks in force stay");
    failed_ = true;
    seen_ = {};
    return nullptr;
  }
  if (now == seen_) return nullptr;
  try {
    auto locks = load_locks(path_);
    seen_ = now;
    state_.set(locks);
    failed_ = false;
    log::info("locks: " + std::to_string(locks->size()) + " in force (" + path_ + ")");
    return locks;
  } catch (const std::exception& e) {
    // Tried again at every poll (a chmod fixes it without changing the file), said once.
    if (!failed_) log::error(std::string("locks: ") + e.what() + "; the locks in force stay");
    failed_ = true;
    return nullptr;
  }
}

}  // namespace castgate
