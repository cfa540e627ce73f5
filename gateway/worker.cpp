#include "gateway/worker.h"

#include <unistd.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "gateway/session.h"
#include "gateway/ssh_keys.h"

namespace castgate {

Worker::Worker(GatewayContext& context, int index) : context_(context) {
  (void)index;
  bind_.reset(ssh_bind_new());
  if (!bind_) throw std::runtime_error("out of memory");
  int off = 0;
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_PROCESS_CONFIG, &off);
  int verbosity = SSH_LOG_NOLOG;
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_BANNER, "castgate");
  for (auto& key : context_.host_keys) {
    // ssh_bind takes ownership of imported keys, so each worker gets its own copy.
    ssh_key copy = ssh::copy_private_key(key.get()).release();
    if (!copy) throw std::runtime_error("cannot copy a host key");
    if (ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_IMPORT_KEY, copy) != SSH_OK)
      throw std::runtime_error("libssh refused a host key");
  }
}

Worker::~Worker() {
  stop_and_join();
}

void Worker::start() {
  loop_.add_timer(std::chrono::milliseconds(1000), [this] { tick(); });
  thread_ = std::thread([this] { loop_.run(); });
}

void Worker::stop_and_join() {
  if (!thread_.joinable()) return;
  loop_.stop();
  thread_.join();
  sessions_.clear();
}

void Worker::tick() {
  loop_.add_timer(std::chrono::milliseconds(1000), [this] { tick(); });
  auto now = context_.clock->steady_now();
  std::vector<std::string> ids;
  ids.reserve(sessions_.size());
  for (auto& [id, s] : sessions_) ids.push_back(id);
  for (auto& id : ids) run_in_session(id, [now](Session& s) { s.tick(now); });
}

void Worker::run_in_session(const std::string& id, const std::function<void(Session&)>& fn) {
  // An exception `fn` throws ends that session (with its last event), never the worker. A closed
  // session has written its last event and waits to be dropped: nothing more runs on it.
  Session* s = find(id);
  if (s && s->state() != Session::State::kClosed) s->guarded([&] { fn(*s); });
}

void Worker::adopt(int fd, ListenSpec listener, asciicast::Endpoint peer) {
  live_.fetch_add(1);
  // Closed with the task if the loop stops before it runs (a task must be copyable).
  auto owned = std::make_shared<UniqueFd>(fd);
  loop_.post([this, owned, listener = std::move(listener), peer = std::move(peer)]() mutable {
    // The prefix is the parent's for this worker: it closes only records that carry it.
    add_session(context_.session_prefix + random_id(8), owned->release(), std::move(listener),
                std::move(peer), std::nullopt);
  });
}

std::string Worker::start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint peer,
                                        const JumpOrigin& origin) {
  std::string id = context_.session_prefix + random_id(8);
  live_.fetch_add(1);
  auto owned = std::make_shared<UniqueFd>(fd);  // as in adopt()
  loop_.defer(
      [this, id, owned, listener = std::move(listener), peer = std::move(peer), origin]() mutable {
        add_session(id, owned->release(), std::move(listener), std::move(peer), std::move(origin));
      });
  return id;
}

void Worker::add_session(std::string id, int fd, ListenSpec listener, asciicast::Endpoint peer,
                         std::optional<JumpOrigin> jump) {
  auto session = std::make_unique<Session>(*this, context_, id, fd, std::move(listener),
                                           std::move(peer), std::move(jump));
  Session* s = session.get();
  sessions_.emplace(std::move(id), std::move(session));
  s->guarded([s] { s->start(); });
}

void Worker::close_all(asciicast::EndReason reason, const std::string& message) {
  loop_.post([this, reason, message] {
    std::vector<std::string> ids;
    for (auto& [id, s] : sessions_) ids.push_back(id);
    for (auto& id : ids) run_in_session(id, [&](Session& s) { s.close(reason, message); });
  });
}

void Worker::retire_all() {
  loop_.post([this] {
    std::vector<std::string> ids;
    for (auto& [id, s] : sessions_) ids.push_back(id);
    for (auto& id : ids) run_in_session(id, [](Session& s) { s.retire(); });
  });
}

void Worker::enforce_locks(std::shared_ptr<const Locks> locks) {
  loop_.post([this, locks = std::move(locks)] {
    std::vector<std::string> ids;
    for (auto& [id, s] : sessions_) ids.push_back(id);
    for (auto& id : ids) run_in_session(id, [&](Session& s) { s.enforce_locks(*locks); });
  });
}

void Worker::resume_all() {
  loop_.post([this] {
    std::vector<std::string> ids;
    for (auto& [id, s] : sessions_) ids.push_back(id);
    for (auto& id : ids) run_in_session(id, [](Session& s) { s.resume(); });
  });
}

void Worker::session_finished(const std::string& id) {
  loop_.defer([this, id] {
    if (sessions_.erase(id)) live_.fetch_sub(1);
  });
}

Session* Worker::find(const std::string& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

std::function<void()> Worker::make_waker(const std::string& id) {
  SessionRef ref{this, id};
  return [ref] { ref.post([](Session& s) { s.resume(); }); };
}

}  // namespace castgate
