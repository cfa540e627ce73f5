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

constexpr size_t kSparePages = 4;
}  // namespace

StdoutWriter::StdoutWriter(Options options, std::function<void()> on_room)
    : options_(options), on_room_(std::move(on_room)) {
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
    append(line, std::move(mark));
    queued_bytes_ += n;
    total_bytes_.store(queued_bytes_, std::memory_order_relaxed);
    // Busy writing, it takes the whole queue when it comes back; gathering, it is woken only
    // once there is a batch's worth.
    if (state_ == WriterState::kIdle ||
        (state_ == WriterState::kGathering && queue_.bytes >= options_.batch_bytes)) {
      state_ = WriterState::kBusy;
      wake = true;
    }
  }
  if (wake) cv_.notify_one();
}

namespace {
template <class Page>
size_t footprint(const Page& page) {
  return page.bytes.capacity() + page.lines.capacity() * sizeof(page.lines[0]);
}
}  // namespace

void StdoutWriter::append(std::string_view line, LineMark mark) {
  const size_t n = line.size() + 1;
  // A page is written at once: at most slice_bytes of lines, whatever room a reused page has.
  if (queue_.pages.empty() ||
      queue_.pages.back().bytes.capacity() - queue_.pages.back().bytes.size() < n ||
      (!queue_.pages.back().bytes.empty() &&
       queue_.pages.back().bytes.size() + n > options_.slice_bytes)) {
    if (!queue_.pages.empty()) {
      // Left less than three quarters full (only a long line does that): it gives back the rest.
      Page& last = queue_.pages.back();
      if (last.bytes.size() < last.bytes.capacity() / 4 * 3) {
        size_t before = footprint(last);
        last.bytes.shrink_to_fit();
        last.lines.shrink_to_fit();
        page_capacity_.fetch_sub(before - footprint(last), std::memory_order_relaxed);
      }
    }
    queue_.pages.push_back(take_page(n));
  }
  Page& page = queue_.pages.back();
  size_t before = page.lines.capacity();
  page.bytes.append(line);
  page.bytes += '\n';
  page.lines.push_back(std::move(mark));
  page_capacity_.fetch_add((page.lines.capacity() - before) * sizeof(LineMark),
                           std::memory_order_relaxed);
  queue_.bytes += n;
  ++queue_.lines;
}

StdoutWriter::Page StdoutWriter::take_page(size_t line_bytes) {
  const bool long_line = line_bytes > options_.slice_bytes / 4;
  if (!long_line && !spare_pages_.empty()) {
    Page page = std::move(spare_pages_.back());
    spare_pages_.pop_back();
    return page;
  }
  Page page;
  page.bytes.reserve(long_line ? line_bytes : options_.slice_bytes);
  page_capacity_.fetch_add(footprint(page), std::memory_order_relaxed);
  return page;
}

void StdoutWriter::return_pages(Batch& batch) {
  for (Page& page : batch.pages) {
    page.bytes.clear();
    page.lines.clear();
    size_t capacity = page.bytes.capacity();
    if (spare_pages_.size() < kSparePages && capacity >= options_.slice_bytes &&
        capacity <= 2 * options_.slice_bytes)
      spare_pages_.push_back(std::move(page));
    else
      page_capacity_.fetch_sub(footprint(page), std::memory_order_relaxed);
  }
  batch.pages.clear();
  batch.bytes = 0;
  batch.lines = 0;
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
      drained_cv_.wait_for(lock, timeout, [this] { return queue_.lines == 0 && !writing_; });
  --drain_waiters_;
  return drained;
}

bool StdoutWriter::write_all(const Batch& batch) {
  uint64_t written = 0;  // lines wholly written
  for (const Page& page : batch.pages) {
    if (!write_slice(page, written)) {
      lost_.fetch_add(batch.lines - written);
      return false;
    }
  }
  return true;
}

// Each page marks its own lines pending just before it is written: if this process dies during
// a write(2), the parent resumes each session from a line that was really on its way out
// (session_table.h), never from one a later page would have written. The lock is taken per page,
// so another process can write between pages and a slow stdout holds it one page at a time.
bool StdoutWriter::write_slice(const Page& page, uint64_t& written) {
  // Waiting for the lock is waiting for stdout too (the signer holds it while it writes).
  busy_since_us_.store(steady_us());
  OutputLockGuard whole_lines(options_.lock);
  for (const LineMark& line : page.lines)
    if (auto* lease = line.backlog ? line.backlog->lease() : nullptr)
      lease->pending(line.seq, std::string_view(line.hash.data(), line.hash.size()), line.final);
  const size_t bytes = page.bytes.size();
  size_t done = 0;              // bytes of the page written
  size_t done_lines = 0;        // lines wholly written
  size_t done_lines_bytes = 0;  // the bytes they take
  while (done < bytes) {
    busy_since_us_.store(steady_us());
    ssize_t n = ::write(options_.fd, page.bytes.data() + done, bytes - done);
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
      return false;
    }
    done += static_cast<size_t>(n);
    bytes_written_.fetch_add(static_cast<size_t>(n), std::memory_order_relaxed);
    while (done_lines < page.lines.size() &&
           done_lines_bytes + page.lines[done_lines].size <= done) {
      const LineMark& line = page.lines[done_lines];
      done_lines_bytes += line.size;
      if (auto* lease = line.backlog ? line.backlog->lease() : nullptr)
        lease->written(line.seq, std::string_view(line.hash.data(), line.hash.size()), line.final);
      ++done_lines;
      ++written;
      written_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return true;
}

void StdoutWriter::run() {
  Batch batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (queue_.lines == 0) drained_cv_.notify_all();
      state_ = WriterState::kIdle;
      cv_.wait(lock, [this] { return stopping_ || queue_.lines > 0; });
      // A line alone would be a write of its own: give the lines that follow it (output comes
      // in bursts) a moment to join it, unless someone waits for the queue to drain.
      if (!stopping_ && drain_waiters_ == 0 && queue_.bytes < options_.batch_bytes &&
          options_.gather_delay.count() > 0) {
        state_ = WriterState::kGathering;
        cv_.wait_for(lock, options_.gather_delay, [this] {
          return stopping_ || drain_waiters_ > 0 || queue_.bytes >= options_.batch_bytes;
        });
      }
      state_ = WriterState::kBusy;
      if (queue_.lines == 0 && stopping_) return;
      std::swap(batch, queue_);
      writing_ = true;
    }
    if (broken_.load()) {
      lost_.fetch_add(batch.lines);
    } else {
      write_all(batch);
    }
    const size_t bytes = batch.bytes;
    for (const Page& page : batch.pages)
      for (const LineMark& line : page.lines)
        if (line.backlog) line.backlog->release(line.size);
    size_t remaining;
    {
      std::lock_guard lock(mu_);
      return_pages(batch);  // a few kept for the next batch, not the room a backlog once took
      queued_bytes_ -= bytes;
      remaining = queued_bytes_;
      total_bytes_.store(remaining, std::memory_order_relaxed);
    }
    if (remaining < options_.global_high_water / 2 && wants_room_.exchange(false) && on_room_)
      on_room_();
  }
}

}  // namespace castgate::asciicast
