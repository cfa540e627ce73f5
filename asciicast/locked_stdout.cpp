#include "asciicast/locked_stdout.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace castgate::asciicast {

void LockedStdout::submit(std::string_view unterminated, const ChainPoint& point,
                          const std::shared_ptr<Backlog>& backlog) {
  std::string line(unterminated);
  line += '\n';
  OutputLockGuard whole(lock_);
  auto* lease = backlog ? backlog->lease() : nullptr;
  if (lease) lease->pending(point.seq, point.hash, point.final);
  std::string_view rest(line);
  while (ok_ && !rest.empty()) {
    ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n > 0) {
      rest.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, kWriteTimeoutMs) <= 0) ok_ = false;
    } else {
      ok_ = false;
    }
  }
  if (lease && rest.empty()) lease->written(point.seq, point.hash, point.final);
}

}  // namespace castgate::asciicast
