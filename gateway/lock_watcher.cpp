#include "gateway/lock_watcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/log.h"

namespace castgate {
namespace {
bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}
}  // namespace

// The lock file, read so that nothing at its path can stall the reader: only a regular file (a
// FIFO would block the open or the read, a device could be endless), opened without blocking,
// at most kMaxLockFile bytes.
std::string read_lock_file(const std::string& path) {
  constexpr off_t kMaxLockFile = 1 << 20;
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  struct stat st {};
  std::string text;
  try {
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
      throw std::runtime_error(path + " is not a regular file");
    if (st.st_size > kMaxLockFile) throw std::runtime_error(path + " is over 1 MiB");
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return text;
}

std::shared_ptr<const Locks> load_locks(const std::string& path) {
  return std::make_shared<const Locks>(Locks::parse(read_lock_file(path), path));
}

// Nothing is taken as seen: the first poll reads the file, so a worker started after a change
// (a replacement for one that died) enforces the locks in force now, not those at start-up.
LockWatcher::LockWatcher(std::string path, LockState& state)
    : path_(std::move(path)), state_(state) {}

std::shared_ptr<const Locks> LockWatcher::poll() {
  struct stat now {};
  if (::stat(path_.c_str(), &now) != 0) {
    if (!failed_) log::error("locks: cannot read " + path_ + "; the locks in force stay");
    failed_ = true;
    seen_ = {};
    return nullptr;
  }
  if (same_file(now, seen_)) return nullptr;
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
