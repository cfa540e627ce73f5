#include "gateway/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "common/log.h"

namespace castgate {
namespace {
uint64_t this_thread_hash() {
  return std::hash<std::thread::id>{}(std::this_thread::get_id()) | 1;
}
}  // namespace

void FdHandler::on_fault(const char* what) noexcept {
  log::error(std::string("internal error in an event handler: ") + what);
}

void EventLoop::run_task(const std::function<void()>& fn, const char* what) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    log::error(std::string("internal error in ") + what + ": " + e.what());
  } catch (...) {
    log::error(std::string("internal error in ") + what);
  }
}

EventLoop::EventLoop() {
  epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
  wakefd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epfd_ || !wakefd_) throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, wakefd_.get(), &ev);
}

EventLoop::~EventLoop() = default;

bool EventLoop::in_loop_thread() const {
  return thread_id_hash_.load() == this_thread_hash();
}

void EventLoop::watch(int fd, uint32_t events, FdHandler* handler) {
  uint32_t gen = ++generation_;
  watches_[fd] = Watch{handler, gen};
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (uint64_t{gen} << 32) | static_cast<uint32_t>(fd);
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    log::error("epoll add fd " + std::to_string(fd) + ": " + std::strerror(errno));
}

void EventLoop::modify(int fd, uint32_t events) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (uint64_t{it->second.generation} << 32) | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::unwatch(int fd) {
  if (watches_.erase(fd)) epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::add_timer(TimePoint when, std::function<void()> fn) {
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  timer_index_.emplace(id, when);
  return id;
}

void EventLoop::cancel_timer(TimerId id) {
  auto it = timer_index_.find(id);
  if (it == timer_index_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_index_.erase(it);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = write(wakefd_.get(), &one, sizeof one);
  (void)n;
}

void EventLoop::defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
}

void EventLoop::stop() {
  stopping_.store(true);
  uint64_t one = 1;
  ssize_t n = write(wakefd_.get(), &one, sizeof one);
  (void)n;
}

void EventLoop::drain_wakeups() {
  uint64_t v;
  while (read(wakefd_.get(), &v, sizeof v) > 0) {
  }
}

void EventLoop::run_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) run_task(fn, "a posted task");
}

void EventLoop::run_deferred() {
  // Deferred work may defer more work; run until none is left.
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(deferred_);
    for (auto& fn : batch) run_task(fn, "deferred work");
  }
}

void EventLoop::run_timers() {
  auto now = std::chrono::steady_clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_index_.erase(node.key().second);
    run_task(node.mapped(), "a timer");
  }
}

int EventLoop::next_timeout_ms() const {
  if (!deferred_.empty()) return 0;
  if (timers_.empty()) return 1000;
  auto delta = timers_.begin()->first.first - std::chrono::steady_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(delta).count();
  if (ms < 0) return 0;
  return static_cast<int>(std::min<long long>(ms + 1, 1000));
}

void EventLoop::run() {
  thread_id_hash_.store(this_thread_hash());
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    int n =
        epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()), next_timeout_ms());
    if (n < 0 && errno != EINTR) {
      log::error(std::string("epoll_wait: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t data = events[i].data.u64;
      if (data == UINT64_MAX) {
        drain_wakeups();
        continue;
      }
      int fd = static_cast<int>(data & 0xffffffffu);
      uint32_t gen = static_cast<uint32_t>(data >> 32);
      auto it = watches_.find(fd);
      if (it == watches_.end() || it->second.generation != gen) continue;
      FdHandler* handler = it->second.handler;
      try {
        handler->on_fd_ready(fd, events[i].events);
      } catch (const std::exception& e) {
        handler->on_fault(e.what());
      } catch (...) {
        handler->on_fault("unknown exception");
      }
    }
    run_posted();
    run_timers();
    run_deferred();
  }
  run_posted();
  run_deferred();
}

}  // namespace castgate
