// A lock shared by castgate and its signer process around writes to stdout. Both write whole
// lines to the same descriptor; a write to a pipe longer than PIPE_BUF can be split when the pipe
// is full, and another process's write can land in the gap, cutting a line in two. The lock is a
// robust, process-shared mutex in a shared anonymous page made before the fork: if a process dies
// holding it, the other takes it over.
#pragma once

#include <pthread.h>

namespace castgate {

class OutputLock {
 public:
  OutputLock();  // maps the shared page; throws std::runtime_error if it cannot
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  void lock();
  void unlock();

 private:
  pthread_mutex_t* mu_ = nullptr;
};

class OutputLockGuard {
 public:
  explicit OutputLockGuard(OutputLock* lock) : lock_(lock) {
    if (lock_) lock_->lock();
  }
  ~OutputLockGuard() {
    if (lock_) lock_->unlock();
  }
  OutputLockGuard(const OutputLockGuard&) = delete;
  OutputLockGuard& operator=(const OutputLockGuard&) = delete;

 private:
  OutputLock* lock_;
};

}  // namespace castgate
