#include "gateway/lock_watcher.h"

#include <stdexcept>

#include "common/log.h"
#include "common/text.h"

namespace castgate {
namespace {
bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}
}  // namespace

std::shared_ptr<const Locks> load_locks(const std::string& path) {
  return std::make_shared<const Locks>(Locks::parse(read_file(path), path));
}

LockWatcher::LockWatcher(std::string path, LockState& state)
    : path_(std::move(path)), state_(state) {
  if (::stat(path_.c_str(), &seen_) != 0) seen_ = {};
}

std::shared_ptr<const Locks> LockWatcher::poll() {
  struct stat now {};
  if (::stat(path_.c_str(), &now) != 0) {
    if (!failed_) log::error("locks: cannot read " + path_ + "; the locks in force stay");
    failed_ = true;
    seen_ = {};
    return nullptr;
  }
  if (same_file(now, seen_)) return nullptr;
  seen_ = now;
  try {
    auto locks = load_locks(path_);
    state_.set(locks);
    failed_ = false;
    log::info("locks: " + std::to_string(locks->size()) + " in force (" + path_ + ")");
    return locks;
  } catch (const std::exception& e) {
    log::error(std::string("locks: ") + e.what() + "; the locks in force stay");
    failed_ = true;
    return nullptr;
  }
}

}  // namespace castgate
