#include "common/output_lock.h"

#include <errno.h>
#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace castgate {

OutputLock::OutputLock() {
  void* page = mmap(nullptr, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED)
    throw std::runtime_error(std::string("cannot map the output lock: ") + std::strerror(errno));
  mu_ = static_cast<pthread_mutex_t*>(page);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(mu_, &attr);
  pthread_mutexattr_destroy(&attr);
}

OutputLock::~OutputLock() {
  munmap(mu_, sizeof(pthread_mutex_t));
}

void OutputLock::lock() {
  // The other process died holding it, maybe half-way through a line: the line is cut either
  // way (its hash chain shows it); the lock itself is fine to take over.
  if (pthread_mutex_lock(mu_) == EOWNERDEAD) pthread_mutex_consistent(mu_);
}

void OutputLock::unlock() {
  pthread_mutex_unlock(mu_);
}

}  // namespace castgate
