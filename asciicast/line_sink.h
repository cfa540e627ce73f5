// Where finished recording lines go, and the flow control that lets a slow stdout push back on
// the sessions that produce lines instead of dropping them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/session_table.h"

namespace castgate::asciicast {

// Bytes a single session has handed to the sink that are not yet written. When the backlog is
// above its high-water mark the session must stop reading from its peers; the sink calls the
// waker (from its own thread) once the backlog falls below half of it.
class Backlog {
 public:
  explicit Backlog(size_t high_water, std::function<void()> waker = {})
      : high_water_(high_water), waker_(std::move(waker)) {}

  bool has_room() {
    if (pending_.load(std::memory_order_acquire) < high_water_) return true;
    wants_wake_.store(true, std::memory_order_release);
    // Re-check: the sink may have drained between the load and the store.
    return pending_.load(std::memory_order_acquire) < high_water_;
  }
  void add(size_t n) { pending_.fetch_add(n, std::memory_order_acq_rel); }
  void release(size_t n) {
    size_t now = pending_.fetch_sub(n, std::memory_order_acq_rel) - n;
    if (now < high_water_ / 2 && wants_wake_.exchange(false) && waker_) waker_();
  }
  size_t pending() const { return pending_.load(std::memory_order_acquire); }

  // The chain's slot in the worker's session table (session_table.h), marked by the sink as its
  // lines reach stdout; freed with the backlog, once the last line queued for it is written.
  void attach(std::unique_ptr<SessionTable::Lease> lease) { lease_ = std::move(lease); }
  SessionTable::Lease* lease() const { return lease_.get(); }

 private:
  const size_t high_water_;
  const std::function<void()> waker_;
  std::atomic<size_t> pending_{0};
  std::atomic<bool> wants_wake_{false};
  std::unique_ptr<SessionTable::Lease> lease_;
};

// Where a line sits in its chain: its sequence number, its chain hash (hex) and whether it ends it.
struct ChainPoint {
  uint64_t seq = 0;
  std::string_view hash;
  bool final = false;
};

enum class SinkHealth {
  kHealthy,
  kStalled,  // a write has been blocked longer than the configured limit
  kBroken,   // the output is closed or failing; nothing can be recorded
};

class LineSink {
 public:
  virtual ~LineSink() = default;
  // Takes (copies) one complete line (without the trailing newline). Never drops it: if the sink
  // is broken the line is counted as lost and reported on stderr.
  virtual void submit(std::string_view line, const ChainPoint& point,
                      const std::shared_ptr<Backlog>& backlog) = 0;
  // False when the sink's global queue is full; producers must pause like for their own backlog.
  virtual bool has_room() const = 0;
  virtual SinkHealth health() const = 0;
};

}  // namespace castgate::asciicast
