#include "gateway/worker_process.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "common/crypto.h"
#include "common/log.h"
#include "gateway/gateway.h"
#include "gateway/sandbox.h"
#include "gateway/worker_channel.h"

namespace castgate {

using asciicast::EventKind;
using nlohmann::json;

namespace {

// Closes every descriptor but the standard streams and `keep`: the parent's listeners, health
// socket, event loop and the other workers' channels are not this worker's business.
void close_all_except(std::vector<int> keep) {
  keep.push_back(0);
  keep.push_back(1);
  keep.push_back(2);
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  unsigned from = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    if (static_cast<unsigned>(fd) > from) close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  close_range(from, ~0U, 0);
}

}  // namespace

void run_worker_process(GatewayContext& ctx, WorkerProcessSetup setup) {
  int rc = 2;
  try {
    pid_t parent = getppid();
    prctl(PR_SET_NAME, "castgate-worker");
    // The parent gone, nobody would close this worker's records if it died: drain and stop.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    std::vector<int> keep = setup.keep_fds;
    keep.push_back(setup.channel);
    keep.push_back(setup.signer);
    close_all_except(keep);
    // The parent's connection to the signer is the parent's: its descriptor is closed above, and
    // its object is left alone (destroying it would wait for the signer to end).
    SignerClient* parents = ctx.signer.release();
    ctx.signer =
        SignerClient::adopt(setup.signer, parents->ca_public_blob(), parents->public_key_raw());
    ctx.session_table = setup.table;
    ctx.worker_index = setup.index;
    ctx.session_prefix = setup.session_prefix;
    int channel = setup.channel;
    ctx.startup_done = [channel](const std::string& ip) {
      worker_channel::send(channel,
                           worker_channel::Message{worker_channel::Type::kSignedIn, 0, ip, 0});
    };
    auto report = sandbox::enter(worker_readable(ctx));
    std::string note = "seccomp; landlock " + report.landlock;
    start_worker_services(ctx);
    WorkerProcess process(ctx, std::move(setup), note);
    rc = process.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "castgate: worker process %d: %s\n", static_cast<int>(getpid()), e.what());
  }
  std::fflush(stderr);
  _exit(rc);
}

WorkerProcess::WorkerProcess(GatewayContext& context, WorkerProcessSetup setup,
                             std::string sandbox_note)
    : context_(context),
      setup_(std::move(setup)),
      sandbox_note_(std::move(sandbox_note)),
      metrics_recorder_(*setup_.metrics) {
  auto& cfg = context_.config;
  asciicast::StdoutWriter::Options wopts;
  wopts.fd = STDOUT_FILENO;
  wopts.lock = context_.output_lock.get();
  wopts.stall_limit =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.recording_stall_limit);
  writer_ = std::make_unique<asciicast::StdoutWriter>(wopts, [this] {
    for (auto& w : workers_) w->resume_all();
  });
  context_.sink = writer_.get();
  context_.event_observer = &metrics_recorder_;
  if (!cfg.locks_file.empty()) {
    lock_watcher_ = std::make_unique<LockWatcher>(cfg.locks_file, context_.locks);
    lock_watcher_->poll();  // before serving: the locks in force now, not at the parent's start
  }
  asciicast::SessionLogOptions lopts;
  lopts.instance = cfg.instance;
  lopts.max_line = cfg.max_line;
  lopts.signing_key = context_.signer.get();
  const std::string& id = setup_.chain;
  auto backlog = std::make_shared<asciicast::Backlog>(SIZE_MAX);
  auto lease = setup_.table->open(id);
  if (!lease) throw std::runtime_error("the session table is full");
  backlog->attach(std::move(lease));
  log_ = std::make_unique<asciicast::SessionLog>(lopts, id, asciicast::Endpoint{"", 0}, *writer_,
                                                 std::move(backlog), *context_.clock);
  context_.checkpoints = &ledger_;
  for (int i = 0; i < cfg.workers; ++i) workers_.push_back(std::make_unique<Worker>(context_, i));
}

WorkerProcess::~WorkerProcess() {
  for (auto& w : workers_) w->stop_and_join();
  // The writer goes before the workers: its wakers post to the workers' loops.
  writer_.reset();
  workers_.clear();
}

Worker& WorkerProcess::pick_worker() {
  Worker* best = workers_[0].get();
  for (auto& w : workers_)
    if (w->live_sessions() < best->live_sessions()) best = w.get();
  return *best;
}

void WorkerProcess::on_fd_ready(int fd, uint32_t) {
  if (fd == signal_fd_.get()) return on_signal();
  if (fd == setup_.channel) return on_channel();
}

void WorkerProcess::on_channel() {
  for (int i = 0; i < 64; ++i) {
    int passed = -1;
    ssize_t n = worker_channel::receive(setup_.channel, packet_, passed);
    UniqueFd fd(passed);  // closed unless a worker adopts it
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      // The parent is gone: nothing new will come, and nobody would close these records.
      log::error("worker process: the parent process is gone; draining");
      loop_.unwatch(setup_.channel);
      if (!draining_) begin_drain();
      return;
    }
    auto m = worker_channel::decode(packet_);
    if (m && m->type == worker_channel::Type::kRetire && !fd) {
      retire();
      continue;
    }
    if (!m || m->type != worker_channel::Type::kAdopt || !fd ||
        m->listener >= setup_.listeners.size()) {
      log::error("worker process: a malformed message from the parent");
      continue;
    }
    if (draining_) {  // too late: the parent sent it before it saw this worker stop
      fd.reset();
      context_.startup_done(m->address);
      continue;
    }
    pick_worker().adopt(fd.release(), setup_.listeners[m->listener],
                        asciicast::Endpoint{m->address, static_cast<int>(m->port)});
  }
}

void WorkerProcess::on_signal() {
  signalfd_siginfo si{};
  while (read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGUSR1) {
      // A retired worker past the parent's limit: its sessions end as on a stop, said as what
      // it is.
      if (retiring_ && !draining_) {
        end_reason_ = asciicast::EndReason::kConfigReloaded;
        end_message_ =
            "castgate's configuration was reloaded many times while this session was open; "
            "connect again";
        begin_drain();
      }
      continue;
    }
    if (si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT) continue;
    end_reason_ = asciicast::EndReason::kGatewayShutdown;
    end_message_ = "castgate is shutting down; the session was closed";
    if (!draining_) {
      begin_drain();
    } else if (!closing_all_) {
      closing_all_ = true;
      for (auto& w : workers_) w->close_all(end_reason_, end_message_);
    }
  }
}

void WorkerProcess::begin_drain() {
  draining_ = true;
  context_.draining.store(true);
  drain_deadline_ = std::chrono::steady_clock::now() + context_.config.shutdown_grace;
}

void WorkerProcess::retire() {
  if (retiring_) return;
  retiring_ = true;
  context_.retired.store(true);
  for (auto& w : workers_) w->retire_all();
  size_t live = 0;
  for (auto& w : workers_) live += w->live_sessions();
  log::info("worker process " + std::to_string(setup_.index) + " (pid " + std::to_string(getpid()) +
            "): the configuration was reloaded; " + std::to_string(live) +
            " connections go on under the rules they started with");
  log_->emit(EventKind{"worker.retiring", "", ""},
             json{{"castgate",
                   {{"worker", {{"index", setup_.index}, {"pid", getpid()}}},
                    {"live_sessions", live},
                    {"config", context_.rules_digest}}}});
}

void WorkerProcess::watchdog() {
  auto health = writer_->health();
  if (health != last_health_) {
    if (health == asciicast::SinkHealth::kStalled)
      log::error(
          "recording output (stdout) is blocked; live sessions are ended and new ones refused");
    else if (health == asciicast::SinkHealth::kBroken)
      log::error("recording output (stdout) failed; live sessions are ended and new ones refused");
    else
      log::info("recording output (stdout) recovered; new sessions are accepted again");
    last_health_ = health;
  }
  size_t live = 0;
  for (auto& w : workers_) live += w->live_sessions();
  setup_.table->set_status(static_cast<uint32_t>(health), static_cast<uint32_t>(live));
  WorkerMetrics& m = *setup_.metrics;
  m.set(Metric::kRecordedLines, writer_->lines_written());
  m.set(Metric::kRecordedBytes, writer_->bytes_written());
  m.set(Metric::kLostLines, writer_->lines_lost());
  m.set(Metric::kBackpressure, writer_->backpressure_events());
  m.set(Metric::kBacklogBytes, writer_->bytes_queued());
  if (lock_watcher_) {
    if (auto locks = lock_watcher_->poll())
      for (auto& w : workers_) w->enforce_locks(locks);
  }
  if (std::chrono::steady_clock::now() - last_checkpoint_ >= context_.config.checkpoint_interval)
    checkpoint(false);
  if (draining_ || retiring_) {
    if (live == 0) {
      loop_.stop();
      return;
    }
  }
  if (draining_) {
    if (!closing_all_ && std::chrono::steady_clock::now() >= drain_deadline_) {
      closing_all_ = true;
      for (auto& w : workers_) w->close_all(end_reason_, end_message_);
    }
  }
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
}

void WorkerProcess::checkpoint(bool last) {
  last_checkpoint_ = std::chrono::steady_clock::now();
  asciicast::write_checkpoint(*log_, ++checkpoints_, context_.config.checkpoint_interval,
                              ledger_.take(), last);
}

int WorkerProcess::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) throw std::runtime_error("signalfd failed");
  loop_.watch(signal_fd_.get(), EPOLLIN, this);
  loop_.watch(setup_.channel, EPOLLIN, this);
  for (auto& w : workers_) w->start();
  log::info("worker process " + std::to_string(setup_.index) + " (pid " + std::to_string(getpid()) +
            ") serving with " + std::to_string(workers_.size()) +
            " threads; sandbox: " + sandbox_note_);
  log_->emit(EventKind{"worker.start", "success", ""},
             json{{"castgate",
                   {{"worker", {{"index", setup_.index}, {"pid", getpid()}}},
                    {"sandbox", sandbox_note_},
                    {"config", context_.rules_digest}}}});
  worker_channel::Message started;
  started.type = worker_channel::Type::kChainStarted;
  worker_channel::send(setup_.channel, started);
  last_checkpoint_ = std::chrono::steady_clock::now();
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
  loop_.run();

  for (auto& w : workers_) w->stop_and_join();
  checkpoint(true);
  log_->end(EventKind{"worker.stop", "", "stopped"},
            json{{"castgate", {{"worker", {{"index", setup_.index}, {"pid", getpid()}}}}}});
  bool drained = writer_->drain(std::chrono::seconds(10));
  if (!drained) log::error("recording output did not drain within 10s; some events may be missing");
  return (drained && writer_->lines_lost() == 0) ? 0 : 1;
}

}  // namespace castgate
