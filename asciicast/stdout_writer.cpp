#include "asciicast/stdout_writer.h"

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
    : options_(options), on_room_(std::move(on_room)) {
  queue_.bytes.reserve(2 * options_.batch_bytes);  // what a gathered batch takes, and its last line
  thread_ = std::thread([this] { run(); });
}

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

void StdoutWriter::submit(std::string_view line, const ChainPoint& point,
                          const std::shared_ptr<Backlog>& backlog) {
  size_t n = line.size() + 1;
  if (backlog) backlog->add(n);
  LineMark mark{backlog, point.seq, n, {}, point.final};
  std::memcpy(mark.hash.data(), point.hash.data(), std::min(point.hash.size(), mark.hash.size()));
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    queue_.bytes.append(line);
    queue_.bytes += '\n';
    queue_.lines.push_back(std::move(mark));
    queued_bytes_ += n;
    total_bytes_.store(queued_bytes_, std::memory_order_relaxed);
    // Busy writing, it takes the whole queue when it comes back; gathering, it is woken only
    // once there is a batch's worth.
    if (state_ == WriterState::kIdle ||
        (state_ == WriterState::kGathering && queue_.bytes.size() >= options_.batch_bytes)) {
      state_ = WriterState::kBusy;
      wake = true;
    }
  }
  if (wake) cv_.notify_one();
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
  ++drain_waiters_;  // no more gathering: what is queued goes out now
  cv_.notify_one();
  bool drained =
      drained_cv_.wait_for(lock, timeout, [this] { return queue_.lines.empty() && !writing_; });
  --drain_waiters_;
  return drained;
}

bool StdoutWriter::write_all(const Batch& batch) {
  size_t done_lines = 0;  // lines wholly written
  size_t offset = 0;      // their bytes
  while (done_lines < batch.lines.size()) {
    // A slice of whole lines, at most slice_bytes (or one longer line). Each slice marks its own
    // lines pending just before it is written: if this process dies during a write(2), the parent
    // resumes each session from a line that was really on its way out (session_table.h), never
    // from one a later slice would have written. The lock is taken per slice, so another process
    // can write between slices and a slow stdout holds it one slice at a time.
    size_t end = done_lines, bytes = 0;
    do {
      bytes += batch.lines[end].size;
      ++end;
    } while (end < batch.lines.size() && bytes + batch.lines[end].size <= options_.slice_bytes);
    if (!write_slice(batch, done_lines, end, offset)) return false;
    done_lines = end;
    offset += bytes;
  }
  return true;
}

bool StdoutWriter::write_slice(const Batch& batch, size_t first, size_t end, size_t offset) {
  // Waiting for the lock is waiting for stdout too (the signer holds it while it writes).
  busy_since_us_.store(steady_us());
  OutputLockGuard whole_lines(options_.lock);
  size_t bytes = 0;
  for (size_t i = first; i < end; ++i) {
    const LineMark& line = batch.lines[i];
    bytes += line.size;
    if (auto* lease = line.backlog ? line.backlog->lease() : nullptr)
      lease->pending(line.seq, std::string_view(line.hash.data(), line.hash.size()), line.final);
  }
  size_t done = 0;              // bytes of the slice written
  size_t done_lines = first;    // lines wholly written
  size_t done_lines_bytes = 0;  // the bytes they take
  while (done < bytes) {
    busy_since_us_.store(steady_us());
    ssize_t n = ::write(options_.fd, batch.bytes.data() + offset + done, bytes - done);
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
      lost_.fetch_add(batch.lines.size() - done_lines);
      return false;
    }
    done += static_cast<size_t>(n);
    bytes_written_.fetch_add(static_cast<size_t>(n), std::memory_order_relaxed);
    while (done_lines < end && done_lines_bytes + batch.lines[done_lines].size <= done) {
      const LineMark& line = batch.lines[done_lines];
      done_lines_bytes += line.size;
      if (auto* lease = line.backlog ? line.backlog->lease() : nullptr)
        lease->written(line.seq, std::string_view(line.hash.data(), line.hash.size()), line.final);
      ++done_lines;
      written_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return true;
}

void StdoutWriter::run() {
  Batch batch;
  batch.bytes.reserve(2 * options_.batch_bytes);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (queue_.lines.empty()) drained_cv_.notify_all();
      state_ = WriterState::kIdle;
      cv_.wait(lock, [this] { return stopping_ || !queue_.lines.empty(); });
      // A line alone would be a write of its own: give the lines that follow it (output comes
      // in bursts) a moment to join it, unless someone waits for the queue to drain.
      if (!stopping_ && drain_waiters_ == 0 && queue_.bytes.size() < options_.batch_bytes &&
          options_.gather_delay.count() > 0) {
        state_ = WriterState::kGathering;
        cv_.wait_for(lock, options_.gather_delay, [this] {
          return stopping_ || drain_waiters_ > 0 || queue_.bytes.size() >= options_.batch_bytes;
        });
      }
      state_ = WriterState::kBusy;
      if (queue_.lines.empty() && stopping_) return;
      std::swap(batch, queue_);
      writing_ = true;
    }
    if (broken_.load()) {
      lost_.fetch_add(batch.lines.size());
    } else {
      write_all(batch);
    }
    size_t bytes = batch.bytes.size();
    for (auto& line : batch.lines)
      if (line.backlog) line.backlog->release(line.size);
    batch.lines.clear();
    batch.bytes.clear();
    // The buffers are kept for the next batch, but not the room a backlog once took.
    if (batch.bytes.capacity() > 4 * options_.batch_bytes) std::string().swap(batch.bytes);
    if (batch.lines.capacity() > 4096) std::vector<LineMark>().swap(batch.lines);
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
