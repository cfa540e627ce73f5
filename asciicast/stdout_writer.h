// A dedicated thread that writes recording lines to a file descriptor (stdout). Producers never
// block: they enqueue and watch their Backlog. The queue is bounded by the producers pausing, not
// by dropping lines.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

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
  };
  // `on_room` is called from the writer thread when the global queue falls below half its
  // high-water mark after producers saw it full.
  StdoutWriter(Options options, std::function<void()> on_room = {});
  ~StdoutWriter() override;

  void submit(std::string&& line, const ChainPoint& point,
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

 private:
  struct Item {
    std::string line;  // with trailing newline
    std::shared_ptr<Backlog> backlog;
    uint64_t seq = 0;
    std::array<char, SessionTable::kHashHex> hash{};
    bool final = false;
  };
  void run();
  bool write_all(const std::deque<Item>& batch);

  const Options options_;
  const std::function<void()> on_room_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_cv_;
  std::deque<Item> queue_;
  size_t queued_bytes_ = 0;  // guarded by mu_, includes the batch being written
  bool stopping_ = false;
  bool writing_ = false;
  bool waiting_ = false;  // the writer thread sleeps on cv_: only then does submit() wake it
  mutable std::atomic<bool> wants_room_{false};
  std::atomic<size_t> total_bytes_{0};
  std::atomic<int64_t> busy_since_us_{0};
  std::atomic<bool> broken_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> lost_{0};
  std::atomic<uint64_t> bytes_written_{0};
  mutable std::atomic<uint64_t> backpressure_{0};
  std::thread thread_;
};

}  // namespace castgate::asciicast
