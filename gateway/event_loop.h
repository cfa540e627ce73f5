// One thread's event loop: level-triggered epoll over file descriptors, timers, tasks posted from
// other threads, and work deferred to the end of the current pass (teardown never happens inside
// the callback that asked for it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/unique_fd.h"

namespace castgate {

// Code run from the loop (fd readiness, timers, posted and deferred tasks) may throw; the loop
// never lets an exception escape. An FdHandler gets on_fault() for its own failures (a session
// closes itself there); anything else is logged and the loop goes on.
class FdHandler {
 public:
  virtual ~FdHandler() = default;
  virtual void on_fd_ready(int fd, uint32_t epoll_events) = 0;
  virtual void on_fault(const char* what) noexcept;
};

class EventLoop {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void watch(int fd, uint32_t events, FdHandler* handler);
  void modify(int fd, uint32_t events);
  void unwatch(int fd);

  TimerId add_timer(TimePoint when, std::function<void()> fn);
  TimerId add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
    return add_timer(std::chrono::steady_clock::now() + delay, std::move(fn));
  }
  void cancel_timer(TimerId id);

  // Thread-safe: runs `fn` on the loop's thread soon.
  void post(std::function<void()> fn);
  // Loop thread only: runs `fn` after the current pass's callbacks.
  void defer(std::function<void()> fn);

  void run();
  void stop();  // thread-safe
  bool in_loop_thread() const;

 private:
  // Runs `fn`; an exception it throws is logged as an internal error of `what`.
  static void run_task(const std::function<void()>& fn, const char* what) noexcept;
  void drain_wakeups();
  void run_posted();
  void run_deferred();
  void run_timers();
  int next_timeout_ms() const;

  UniqueFd epfd_;
  UniqueFd wakefd_;  // closed first
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> thread_id_hash_{0};
  struct Watch {
    FdHandler* handler;
    uint32_t generation;
  };
  std::unordered_map<int, Watch> watches_;
  uint32_t generation_ = 0;
  std::map<std::pair<TimePoint, TimerId>, std::function<void()>> timers_;
  std::unordered_map<TimerId, TimePoint> timer_index_;
  TimerId next_timer_ = 1;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> deferred_;
};

}  // namespace castgate
