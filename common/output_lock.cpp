#include "common/output_lock.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace castgate {

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void init_shared_mutex(pthread_mutex_t* mu) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(mu, &attr);
  pthread_mutexattr_destroy(&attr);
}

OutputLock::OutputLock(int fd) : fd_(fd) {
  void* page =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED)
    throw std::runtime_error(std::string("cannot map the output lock: ") + std::strerror(errno));
  shared_ = static_cast<Shared*>(page);
  init_shared_mutex(&shared_->mu);
}

OutputLock::~OutputLock() {
  munmap(shared_, sizeof(Shared));
}

void OutputLock::lock() {
  if (pthread_mutex_lock(&shared_->mu) == EOWNERDEAD) {
    // The holder died, maybe half-way through a line: end that line, so the next one starts
    // on its own (a whole line gets an empty one after it, which readers skip).
    shared_->dead_holder = shared_->holder;
    for (int tries = 0; tries < 1000; ++tries) {
      ssize_t n = ::write(fd_, "\n", 1);
      if (n == 1 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
      if (n < 0 && errno == EAGAIN) usleep(1000);  // a full non-blocking pipe: wait a little
    }
    pthread_mutex_consistent(&shared_->mu);
  }
  shared_->holder = getpid();
  __atomic_store_n(&shared_->locked_at_ms, now_ms(), __ATOMIC_RELAXED);
}

void OutputLock::unlock() {
  __atomic_store_n(&shared_->locked_at_ms, 0, __ATOMIC_RELAXED);
  shared_->holder = 0;
  pthread_mutex_unlock(&shared_->mu);
}

std::chrono::milliseconds OutputLock::held_for() const {
  int64_t at = __atomic_load_n(&shared_->locked_at_ms, __ATOMIC_RELAXED);
  return std::chrono::milliseconds(at == 0 ? 0 : std::max<int64_t>(0, now_ms() - at));
}

bool OutputLock::died_holding(pid_t pid) {
  lock();
  bool died = shared_->dead_holder == pid;
  unlock();
  return died;
}

}  // namespace castgate
