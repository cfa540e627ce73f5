#include "asciicast/stdout_writer.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"

namespace castgate::asciicast {
namespace {
int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

StdoutWriter::StdoutWriter(Options options, std::function<void()> on_room)
    : options_(options), on_room_(std::move(on_room)), thread_([this] { run(); }) {}

StdoutWriter::~StdoutWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (lost_.load() > 0)
    log::error("recording output failed: " + std::to_string(lost_.load()) +
               " lines could not be written");
}

void StdoutWriter::submit(std::string&& line, const ChainPoint& point,
                          const std::shared_ptr<Backlog>& backlog) {
  line += '\n';
  size_t n = line.size();
  if (backlog) backlog->add(n);
  Item item{std::move(line), backlog, point.seq, {}, point.final};
  std::memcpy(item.hash.data(), point.hash.data(), std::min(point.hash.size(), item.hash.size()));
  {
    std::lock_guard lock(mu_);
    queued_bytes_ += n;
    total_bytes_.store(queued_bytes_, std::memory_order_relaxed);
    queue_.push_back(std::move(item));
    if (!waiting_) return;  // busy writing: it takes the whole queue when it comes back
  }
  cv_.notify_one();
}

bool StdoutWriter::has_room() const {
  if (total_bytes_.load(std::memory_order_relaxed) < options_.global_high_water) return true;
  if (!wants_room_.exchange(true)) backpressure_.fetch_add(1, std::memory_order_relaxed);
  return total_bytes_.load(std::memory_order_relaxed) < options_.global_high_water;
}

SinkHealth StdoutWriter::health() const {
  if (broken_.load()) return SinkHealth::kBroken;
  int64_t since = busy_since_us_.load();
  if (since != 0 && steady_us() - since > options_.stall_limit.count() * 1000)
    return SinkHealth::kStalled;
  // Another process (a worker, the signer, the parent) blocked writing holds the shared lock.
  if (options_.lock && options_.lock->held_for() > options_.stall_limit)
    return SinkHealth::kStalled;
  return SinkHealth::kHealthy;
}

bool StdoutWriter::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return drained_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && !writing_; });
}

bool StdoutWriter::write_all(const std::deque<Item>& batch) {
  // Waiting for the lock is waiting for stdout too (the signer holds it while it writes).
  busy_since_us_.store(steady_us());
  OutputLockGuard whole_lines(options_.lock);
  std::vector<iovec> iov;
  iov.reserve(std::min<size_t>(batch.size(), IOV_MAX));
  size_t idx = 0;
  while (idx < batch.size()) {
    iov.clear();
    size_t first = idx;
    for (; idx < batch.size() && iov.size() < IOV_MAX; ++idx) {
      const Item& item = batch[idx];
      // Before write(2): if this process dies during it, the parent knows which lines were on
      // their way out (session_table.h).
      if (auto* lease = item.backlog ? item.backlog->lease() : nullptr)
        lease->pending(item.seq, std::string_view(item.hash.data(), item.hash.size()), item.final);
      iov.push_back(iovec{const_cast<char*>(item.line.data()), item.line.size()});
    }
    size_t done_iov = 0;
    while (done_iov < iov.size()) {
      busy_since_us_.store(steady_us());
      ssize_t n = ::writev(options_.fd, iov.data() + done_iov,
                           static_cast<int>(std::min<size_t>(iov.size() - done_iov, IOV_MAX)));
      busy_since_us_.store(0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          usleep(1000);  // a non-blocking stdout: wait for it like a blocking one would
          continue;
        }
        if (!broken_.exchange(true))
          log::error(std::string("recording output failed: ") + std::strerror(errno) +
                     "; sessions are ended and new ones refused");
        lost_.fetch_add(batch.size() - first);
        return false;
      }
      size_t left = static_cast<size_t>(n);
      bytes_written_.fetch_add(left, std::memory_order_relaxed);
      while (left > 0 && done_iov < iov.size()) {
        if (left >= iov[done_iov].iov_len) {
          left -= iov[done_iov].iov_len;
          const Item& item = batch[first + done_iov];
          if (auto* lease = item.backlog ? item.backlog->lease() : nullptr)
            lease->written(item.seq, std::string_view(item.hash.data(), item.hash.size()),
                           item.final);
          ++done_iov;
          written_.fetch_add(1, std::memory_order_relaxed);
        } else {
          iov[done_iov].iov_base = static_cast<char*>(iov[done_iov].iov_base) + left;
          iov[done_iov].iov_len -= left;
          left = 0;
        }
      }
    }
  }
  return true;
}

void StdoutWriter::run() {
  std::deque<Item> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (queue_.empty()) drained_cv_.notify_all();
      waiting_ = true;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      waiting_ = false;
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
      writing_ = true;
    }
    if (broken_.load()) {
      lost_.fetch_add(batch.size());
    } else {
      write_all(batch);
    }
    size_t bytes = 0;
    for (auto& item : batch) {
      bytes += item.line.size();
      if (item.backlog) item.backlog->release(item.line.size());
    }
    batch.clear();
    size_t remaining;
    {
      std::lock_guard lock(mu_);
      queued_bytes_ -= bytes;
      remaining = queued_bytes_;
      total_bytes_.store(remaining, std::memory_order_relaxed);
    }
    if (remaining < options_.global_high_water / 2 && wants_room_.exchange(false) && on_room_)
      on_room_();
  }
}

}  // namespace castgate::asciicast
