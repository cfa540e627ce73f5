// A dedicated thread that writes recording lines to a file descriptor (stdout). Producers never
// block: they copy each line into the shared queue and watch their Backlog. The queue is bounded
// by the producers pausing, not by dropping lines. The thread writes the queue in large writes:
// woken by a line, it waits up to gather_delay for batch_bytes to gather, because each write
// costs a wake-up and a system call, and a file's page cache more per call than per byte.
//
// The queue is pages of whole lines, each written with one write(2): the memory it takes stays
// close to the bytes it holds (within a third, and a few pages kept for reuse), where one buffer
// grown by doubling could take twice its bytes, and a copy of them while it grew.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "asciicast/line_sink.h"
#include "common/output_lock.h"

namespace castgate::asciicast {

class StdoutWriter final : public LineSink {
 public:
  struct Options {
    int fd = 1;
    size_t global_high_water = 64u << 20;  // queued bytes over all sessions
    std::chrono::milliseconds stall_limit{10000};
    OutputLock* lock = nullptr;  // shared with the signer process, which writes its own lines
    // How long a line may wait for others to share its write: a bound on how late a line
    // reaches stdout when little is recorded (zero: written as soon as the thread wakes).
    std::chrono::microseconds gather_delay{5000};
    size_t batch_bytes = 256u << 10;  // written at once without waiting for more
    // Lines go out in slices of whole lines of at most this (or one longer line), each marked
    // pending in the session table only as it goes out, under the output lock taken per slice.
    size_t slice_bytes = 256u << 10;
  };
  // `on_room` is called from the writer thread when the global queue falls below half its
  // high-water mark after producers saw it full.
  StdoutWriter(Options options, std::function<void()> on_room = {});
  ~StdoutWriter() override;

  void submit(std::string_view line, const ChainPoint& point,
              const std::shared_ptr<Backlog>& backlog) override;
  bool has_room() const override;
  SinkHealth health() const override;

  // Waits until every queued line is written or `timeout` passes. Returns true when drained.
  bool drain(std::chrono::milliseconds timeout);
  uint64_t lines_written() const { return written_.load(); }
  uint64_t lines_lost() const { return lost_.load(); }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  uint64_t bytes_queued() const { return total_bytes_.load(std::memory_order_relaxed); }
  // Times producers found the queue full (and paused reading from their peers until it drained).
  uint64_t backpressure_events() const { return backpressure_.load(std::memory_order_relaxed); }
  // The memory the queue's pages take (queued, being written and kept for reuse).
  size_t buffer_bytes() const { return page_capacity_.load(std::memory_order_relaxed); }

 private:
  // A line in a Batch: its session's backlog and its place in its chain (for the session table).
  struct LineMark {
    std::shared_ptr<Backlog> backlog;
    uint64_t seq = 0;
    size_t size = 0;  // with its newline
    std::array<char, SessionTable::kHashHex> hash{};
    bool final = false;
  };
  // Whole lines, newline-terminated, one after another, written with one write(2) (a slice):
  // up to slice_bytes of lines, or a long line (over a quarter of that) alone.
  struct Page {
    std::string bytes;
    std::vector<LineMark> lines;
  };
  struct Batch {
    std::vector<Page> pages;
    size_t bytes = 0;
    size_t lines = 0;
  };
  enum class WriterState {
    kBusy,       // writing, or about to take the queue: submit() need not wake it
    kIdle,       // waiting for a line
    kGathering,  // has a line, waiting briefly for batch_bytes
  };
  void run();
  // Appends a line to the queue (under mu_), in its last page if it fits.
  void append(std::string_view line, LineMark mark);
  Page take_page(size_t capacity);  // under mu_: a kept page if it will do
  void return_pages(Batch& batch);  // under mu_: a few kept for reuse, the rest freed
  // Writes the batch page by page; false (and its unwritten lines counted lost) on failure.
  bool write_all(const Batch& batch);
  // One page's lines under the output lock; `written` counts the lines wholly written.
  bool write_slice(const Page& page, uint64_t& written);

  const Options options_;
  const std::function<void()> on_room_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_cv_;
  Batch queue_;
  std::vector<Page> spare_pages_;  // guarded by mu_: written pages kept for reuse
  size_t queued_bytes_ = 0;        // guarded by mu_, includes the batch being written
  bool stopping_ = false;
  bool writing_ = false;
  WriterState state_ = WriterState::kBusy;  // guarded by mu_
  int drain_waiters_ = 0;                   // guarded by mu_: while non-zero, no gathering
  mutable std::atomic<bool> wants_room_{false};
  std::atomic<size_t> total_bytes_{0};
  std::atomic<size_t> page_capacity_{0};
  std::atomic<int64_t> busy_since_us_{0};
  std::atomic<bool> broken_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> lost_{0};
  std::atomic<uint64_t> bytes_written_{0};
  mutable std::atomic<uint64_t> backpressure_{0};
  std::thread thread_;
};

}  // namespace castgate::asciicast
