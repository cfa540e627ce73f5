// A lock shared by castgate's processes (the parent, its worker processes and the signer) around
// writes to stdout. Each writes whole lines to the same descriptor; a write to a pipe longer than
// PIPE_BUF can be split when the pipe is full, and another process's write can land in the gap,
// cutting a line in two. The lock is a robust, process-shared mutex in a shared anonymous page
// made before the forks: if a process dies holding it, the next one takes it over, first ending
// the line the dead one may have left half-written with a newline (a cut line then stands alone,
// and the chain shows it), and notes who died holding it.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <chrono>

namespace castgate {

// Makes `mu` (in memory shared by the processes) a process-shared, robust mutex: if a process
// dies holding it, the next locker gets EOWNERDEAD instead of waiting for ever.
void init_shared_mutex(pthread_mutex_t* mu);

class OutputLock {
 public:
  explicit OutputLock(int fd = 1);  // maps the shared page; throws std::runtime_error if it cannot
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  void lock();
  void unlock();
  // Whether process `pid` died holding the lock (found by whoever took it over, or now: this
  // takes and releases the lock).
  bool died_holding(pid_t pid);
  // How long whoever holds it (any process) has held it: a writer blocked on a full stdout is
  // seen by every process, not only by the one that is writing.
  std::chrono::milliseconds held_for() const;

 private:
  struct Shared {
    pthread_mutex_t mu;
    pid_t holder;          // the process holding it, 0 when free
    pid_t dead_holder;     // the last process that died holding it
    int64_t locked_at_ms;  // steady clock, when it was taken; 0 when free (atomic access)
  };
  Shared* shared_ = nullptr;
  int fd_;
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
