#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "asciicast/chain.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/sandbox.h"
#include "gateway/ssh_wire.h"
#include "gateway/worker_channel.h"
#include "gateway/worker_process.h"

namespace castgate {

using asciicast::EventKind;
using nlohmann::json;

namespace {

// Chains one worker process may have open at once (a slot is about 220 bytes of shared memory,
// touched only when used).
constexpr size_t kSessionTableSlots = 65536;
// SO_PASSRIGHTS (Linux 6.16): 0 refuses descriptors sent to this socket. Older headers lack it.
#ifdef SO_PASSRIGHTS
constexpr int kSoPassRights = SO_PASSRIGHTS;
#else
constexpr int kSoPassRights = 83;
#endif

std::string ed25519_public_line(const std::string& public_raw, const std::string& comment) {
  ssh::WireWriter w;
  w.string("ssh-ed25519");
  w.string(public_raw);
  return "ssh-ed25519 " + base64_encode(w.data()) + " " + comment;
}

ssh::Key load_ssh_private_key(const std::string& path) {
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK || !key)
    throw std::runtime_error(path + ": cannot read the private key (unencrypted OpenSSH or PEM)");
  return ssh::Key(key);
}

}  // namespace

std::unique_ptr<GatewayContext> load_context(const GatewayConfig& config) {
  auto ctx = std::make_unique<GatewayContext>();
  ctx->config = config;
  if (ctx->config.instance.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    ctx->config.instance = host;
  }
  bool printing = config.print_user_ca || config.print_recording_key;
  if (!printing && config.listens.empty())
    throw std::runtime_error("nothing to listen on: give --listen ADDR:PORT");
  // The keys are read by the signer process, never by this one (which parses the network).
  // Forked first, before any thread starts and before anything else is read.
  ctx->output_lock = std::make_unique<OutputLock>();
  signer::ProcessOptions sopts;
  sopts.user_ca_key_file = config.user_ca_key_file;
  sopts.recording_key_file = config.recording_key_file;
  sopts.generate_recording_key = config.demo || (printing && config.recording_key_file.empty());
  sopts.limits.max_validity = config.max_certificate_validity;
  sopts.limits.max_line = config.max_line;
  sopts.instance = ctx->config.instance;
  sopts.audit = !printing;
  sopts.audit_chain = ctx->signer_chain = "signer-" + random_id(8);
  sopts.output_lock = ctx->output_lock.get();
  ctx->signer = SignerClient::start(sopts);
  if (printing) return ctx;
  for (const auto& path : config.host_key_files)
    ctx->host_keys.push_back(load_ssh_private_key(path));
  if (ctx->host_keys.empty()) {
    if (!config.demo) throw std::runtime_error("--host-key is required (or --demo)");
    ssh_key key = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
      throw std::runtime_error("cannot generate a host key");
    ctx->host_keys.emplace_back(key);
  }
  auto rules = load_rule_set(ctx->config, ctx->signer->has_user_ca());
  for (auto& w : rules.warnings) log::warn(w);
  install_rule_set(*ctx, std::move(rules));
  StartupLimits startups;
  startups.start = config.max_startups_start;
  startups.rate_percent = config.max_startups_rate;
  startups.full = config.max_unauthenticated;
  startups.per_source = config.per_source_max_startups;
  std::string seed = random_bytes(4);
  ctx->startups = std::make_unique<StartupLimiter>(
      startups, [rng = std::minstd_rand(uint32_t{static_cast<uint8_t>(seed[0])} << 24 |
                                        uint32_t{static_cast<uint8_t>(seed[1])} << 16 |
                                        uint32_t{static_cast<uint8_t>(seed[2])} << 8 |
                                        static_cast<uint8_t>(seed[3]))]() mutable {
        return static_cast<int>(rng() % 100);
      });
  ctx->device_sign_ins = std::make_unique<SourceRate>(config.device_sign_in_rate);
  if (!config.oidc_config_file.empty())
    ctx->oidc_config =
        oidc::OidcConfig::parse(read_file(config.oidc_config_file), config.oidc_config_file);
  if (!config.locks_file.empty()) {
    // Worker processes may read the lock file's directory (the file is replaced, not rewritten):
    // it must hold the lock file alone (and a ConfigMap's "..data" entries), never the keys.
    auto path = std::filesystem::absolute(config.locks_file).lexically_normal();
    auto dir = path.parent_path();
    if (dir == dir.root_path())
      throw std::runtime_error("--locks: keep the lock file in a directory of its own, not in /");
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name != path.filename().string() && name.rfind("..", 0) != 0)
        throw std::runtime_error("--locks: " + dir.string() + " also holds " + name +
                                 ": keep the lock file in a directory of its own (worker "
                                 "processes may read everything in it)");
    }
    ctx->config.locks_file = path.string();
    ctx->locks.set(load_locks(ctx->config.locks_file));
  }
  return ctx;
}

sandbox::Options worker_readable(const GatewayContext& ctx) {
  sandbox::Options options;
  if (ctx.oidc_config && !ctx.oidc_config->ca_bundle.empty())
    options.readable.push_back(ctx.oidc_config->ca_bundle);
  // The lock file's directory, not the file: a ConfigMap (or an editor) replaces the file.
  if (!ctx.config.locks_file.empty())
    options.readable.push_back(std::filesystem::path(ctx.config.locks_file).parent_path().string());
  return options;
}

std::vector<std::string> rule_directories_with_keys(const GatewayContext& ctx) {
  namespace fs = std::filesystem;
  std::vector<fs::path> keys;
  for (const auto& k : {ctx.config.user_ca_key_file, ctx.config.recording_key_file})
    if (!k.empty()) keys.push_back(fs::weakly_canonical(fs::absolute(k)));
  std::vector<std::string> out;
  for (const auto& dir : rule_directories(ctx.rule_files)) {
    auto real = fs::weakly_canonical(dir);
    bool holds_key = real == real.root_path();
    for (const auto& key : keys) {
      auto rel = key.lexically_relative(real);
      holds_key = holds_key || (!rel.empty() && *rel.begin() != "..");
    }
    if (holds_key) out.push_back(dir);
  }
  return out;
}

sandbox::Options parent_readable(const GatewayContext& ctx) {
  namespace fs = std::filesystem;
  auto options = worker_readable(ctx);
  auto with_keys = rule_directories_with_keys(ctx);
  for (const auto& dir : rule_directories(ctx.rule_files)) {
    if (std::find(with_keys.begin(), with_keys.end(), dir) != with_keys.end()) {
      log::warn(
          "castgate cannot reload its configuration (neither on SIGHUP nor when files "
          "change): " +
          dir +
          " also holds the signer's keys (or is /), which its parent "
          "process may not read; keep the configuration in a directory of its own");
      continue;
    }
    // Its sandbox holds on to the directory the path names now: a link in the path swapped to
    // another directory later (current -> releases/2) leads where it may not read.
    if (fs::weakly_canonical(dir) != fs::path(dir))
      log::warn(dir +
                " is reached through a symbolic link: castgate reloads the files in it "
                "only while the link leads where it leads now (a ConfigMap's ..data swap, "
                "beneath the directory, is fine)");
    options.readable.push_back(dir);
  }
  return options;
}

void start_worker_services(GatewayContext& ctx) {
  ctx.resolver = std::make_unique<Resolver>(2);
  if (ctx.oidc_config) {
    ctx.oidc = std::make_unique<oidc::OidcService>(*ctx.oidc_config, *ctx.clock);
    ctx.oidc->warm_up();
  }
}

Gateway::Gateway(std::unique_ptr<GatewayContext> context)
    : context_(std::move(context)), checkpoint_due_(context_->config.checkpoint_interval) {
  auto& cfg = context_->config;
  out_ = std::make_unique<asciicast::LockedStdout>(context_->output_lock.get(), STDOUT_FILENO);

  asciicast::SessionLogOptions lopts;
  lopts.instance = cfg.instance;
  lopts.max_line = cfg.max_line;
  lopts.signing_key = context_->signer.get();
  gateway_log_ = std::make_unique<asciicast::SessionLog>(
      lopts, "gateway-" + random_id(8), asciicast::Endpoint{"", 0}, *out_,
      std::make_shared<asciicast::Backlog>(SIZE_MAX), *context_->clock);

  for (const auto& spec : cfg.listens) {
    Listener l;
    l.spec = spec;
    auto resolved = resolve_now(spec.address, spec.port, true);
    if (!resolved)
      throw std::runtime_error("--listen " + spec.text() + ": " + resolved.error().detail);
    const std::vector<ResolvedAddress>& addrs = *resolved;
    l.fd.reset(socket(addrs[0].addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!l.fd ||
        ::bind(l.fd.get(), reinterpret_cast<const sockaddr*>(&addrs[0].addr), addrs[0].len) != 0 ||
        ::listen(l.fd.get(), 1024) != 0)
      throw std::runtime_error("--listen " + spec.text() + ": " + std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
    l.spec.port =
        ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    listeners_.push_back(std::move(l));
  }
  workers_.resize(static_cast<size_t>(cfg.worker_processes));
  metric_totals_ = MetricTotals(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i].index = static_cast<int>(i);
    workers_[i].table = std::make_unique<SessionTable>(kSessionTableSlots);
    workers_[i].metrics = std::make_unique<WorkerMetrics>();
    workers_[i].metrics_index = i;
  }
  if (cfg.health_listen)
    health_ = std::make_unique<HealthEndpoint>(
        health_loop_, cfg.health_listen->address, cfg.health_listen->port,
        [this](HealthRoute route) { return probe(route); },
        [this] {
          std::lock_guard lock(health_mu_);
          return health_view_.metrics;
        });
}

std::string Gateway::readiness() const {
  if (context_->signer->gone()) return "the signer process is gone";
  if (draining_) return "draining";
  bool any = false;
  for (const auto& w : workers_) {
    if (w.pid == 0) continue;
    any = true;
    switch (static_cast<asciicast::SinkHealth>(w.table->health())) {
      case asciicast::SinkHealth::kStalled:
        return "recording output stalled";
      case asciicast::SinkHealth::kBroken:
        return "recording output failed";
      default:
        break;
    }
  }
  return any ? "" : "no worker process is running";
}

void Gateway::publish_health() {
  HealthView v;
  v.ready = readiness();
  v.signer_gone = context_->signer->gone();
  v.metrics = metrics_text(v.ready.empty(), !v.signer_gone);
  v.beat = context_->clock->steady_now();
  std::lock_guard lock(health_mu_);
  health_view_ = std::move(v);
}

std::string Gateway::probe(HealthRoute route) {
  // The main loop may be stuck on a full stdout: waiting for the output lock, in write(2), or
  // on the signer, which waits the same way. Whoever holds the lock has held it that long, and
  // stdout takes nothing: a process holding the lock while stdout is writable (a worker taken
  // over, say) is not a stalled shipper. (The lock's age is on the real clock: it is kept in
  // memory shared with the other processes, as CLOCK_MONOTONIC, the same in all of them.)
  pollfd out{STDOUT_FILENO, POLLOUT, 0};
  auto held = context_->output_lock ? context_->output_lock->held_for()
                                    : std::chrono::steady_clock::duration::zero();
  HeartbeatView view;
  view.output_stalled = held > std::chrono::seconds(2) && ::poll(&out, 1, 0) == 0;
  // The workers' own test (StdoutWriter::health), read here directly: the published view may
  // be up to two watchdog passes old, or older while the main loop waits on that same stdout.
  view.past_stall_limit = view.output_stalled && held > context_->config.recording_stall_limit;
  std::lock_guard lock(health_mu_);
  view.silent = context_->clock->steady_now() - health_view_.beat;
  view.signer_gone = health_view_.signer_gone;
  view.ready = health_view_.ready;
  return HeartbeatVerdict::answer(route, view);
}

std::string Gateway::metrics_text(bool ready, bool signer_up) {
  GatewayGauges g;
  for (const auto& w : workers_) {
    g.workers_configured++;
    if (w.pid == 0) continue;
    g.workers_running++;
    g.live_sessions += w.table->live();
    metric_totals_.observe(w.metrics_index, w.metrics->read());
  }
  for (const auto& w : retiring_) {
    if (w.pid == 0) continue;
    g.workers_retiring++;
    g.live_sessions += w.table->live();
    metric_totals_.observe(w.metrics_index, w.metrics->read());
  }
  g.reloads_ok = reloads_ok_;
  g.reloads_failed = reloads_failed_;
  g.last_reload_ok = last_reload_ok_;
  g.draining = draining_;
  g.ready = ready;
  g.signer_up = signer_up;
  g.worker_restarts = worker_restarts_;
  for (size_t r = 0; r < refused_total_.size(); ++r) g.refused[r] = refused_total_[r] + refused_[r];
  return prometheus_text(metric_totals_.totals(), g);
}

Gateway::~Gateway() {
  health_loop_.stop();
  if (health_thread_.joinable()) health_thread_.join();
  health_.reset();
  for (auto& w : workers_) {
    if (w.pid > 0) {  // only on a failed start: run() waits for every worker
      kill(w.pid, SIGKILL);
      waitpid(w.pid, nullptr, 0);
    }
  }
  // The descriptors (listeners, channels, signalfd) close with their owners.
}

void Gateway::write_ports_file() {
  const auto& path = context_->config.ports_file;
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    for (auto& l : listeners_) out << l.spec.text() << "\n";
    if (health_) out << "health=" << health_->port() << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

size_t Gateway::live_sessions() const {
  size_t live = 0;
  for (const auto& w : workers_)
    if (w.pid > 0) live += w.table->live();
  for (const auto& w : retiring_)
    if (w.pid > 0) live += w.table->live();
  return live;
}

void Gateway::spawn(WorkerSlot& w) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(std::string("cannot start a worker process: ") + std::strerror(errno));
  UniqueFd ours(pair[0]), theirs(pair[1]);
  // Named before the signer hears of the worker: it signs checkpoints for that chain only.
  w.prefix = random_id(3);
  w.chain = "worker-" + w.prefix + random_id(6);
  UniqueFd signer_fd(context_->signer->attach_worker(w.chain));
  w.table->clear();
  w.startups.clear();
  w.handed = 0;
  std::vector<ListenSpec> specs;
  for (const auto& l : listeners_) specs.push_back(l.spec);
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error(std::string("cannot start a worker process: ") + std::strerror(errno));
  if (pid == 0) {
    // The other workers' tables are theirs: this worker must neither read nor write them.
    for_each_process([&w](WorkerSlot& other) {
      if (&other == &w) return;
      other.table.reset();
      other.metrics.reset();
    });
    WorkerProcessSetup setup;
    setup.index = w.index;
    setup.channel = theirs.release();
    setup.signer = signer_fd.release();
    setup.table = w.table.get();
    setup.metrics = w.metrics.get();
    setup.session_prefix = w.prefix;
    setup.chain = w.chain;
    setup.listeners = std::move(specs);
    run_worker_process(*context_, std::move(setup));
  }
  theirs.reset();
  signer_fd.reset();
  // The parent never waits on a worker: a worker that stops reading gets no more connections
  // (send fails at once), and one that passes a descriptor back (whose close could block, with
  // SO_LINGER) is refused by the kernel where it can (Linux 6.16 and later).
  fcntl(ours.get(), F_SETFL, fcntl(ours.get(), F_GETFL) | O_NONBLOCK);
  int off = 0;
  setsockopt(ours.get(), SOL_SOCKET, kSoPassRights, &off, sizeof off);
  w.pid = pid;
  w.channel = std::move(ours);
  w.stuck.cleared();
  w.restarts.started(context_->clock->steady_now());
  loop_.watch(w.channel.get(), EPOLLIN, this);
  w.chain_started = false;
  gateway_log_->emit(
      EventKind{"worker.start", "success", ""},
      json{{"castgate", {{"worker", {{"index", w.index}, {"pid", pid}, {"chain", w.chain}}}}}});
}

Gateway::WorkerSlot* Gateway::pick_worker(const std::string& ip) {
  // By source (an IPv4 address, an IPv6 /64), like the Helm chart's client-IP affinity between
  // replicas: what a worker keeps per source — "sign in once" key bindings — holds for all of
  // that source's connections. A source whose worker is down goes to the next one.
  size_t home = std::hash<std::string>{}(source_block(ip)) % workers_.size();
  for (size_t n = 0; n < workers_.size(); ++n) {
    WorkerSlot& w = workers_[(home + n) % workers_.size()];
    if (w.pid > 0 && w.channel) return &w;
  }
  return nullptr;
}

void Gateway::accept_on(size_t index) {
  const Listener& l = listeners_[index];
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    // The worker gets its own copy of the connection: ours closes at the end of each pass.
    UniqueFd fd(accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&peer), &plen,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        log::warn(std::string("accept: ") + std::strerror(errno));
      return;
    }
    char ip[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (peer.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
    if (draining_) {
      ++refused_[static_cast<size_t>(Refusal::kDraining)];
      continue;
    }
    WorkerSlot* w = pick_worker(ip);
    if (!w) {
      ++refused_[static_cast<size_t>(Refusal::kNoWorker)];
      continue;
    }
    auto verdict = context_->startups->admit(ip);
    if (verdict != StartupLimiter::Verdict::kAdmitted) {
      ++refused_[static_cast<size_t>(
          verdict == StartupLimiter::Verdict::kSourceFull  ? Refusal::kSourceFull
          : verdict == StartupLimiter::Verdict::kEarlyDrop ? Refusal::kEarlyDrop
                                                           : Refusal::kFull)];
      if (verdict == StartupLimiter::Verdict::kSourceFull)
        refused_sources_.insert(source_block(ip));
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    worker_channel::Message m{worker_channel::Type::kAdopt, static_cast<uint32_t>(index), ip,
                              static_cast<uint32_t>(port)};
    if (worker_channel::send(w->channel.get(), m, fd.get())) {
      ++w->startups[ip];
      ++w->handed;
      w->stuck.cleared();
    } else {
      // Not reading (stopped, or looping): after StuckChannel::kLimit it is stopped for good,
      // and its records are closed like a crashed worker's.
      if (w->stuck.full(context_->clock->steady_now())) kill(w->pid, SIGKILL);
      log::warn(std::string("cannot hand a connection to worker process ") +
                std::to_string(w->pid) + ": " + std::strerror(errno));
      context_->startups->release(ip);
      ++refused_[static_cast<size_t>(Refusal::kNoWorker)];
    }
  }
}

void Gateway::on_channel(WorkerSlot& w) {
  for (int i = 0; i < 256; ++i) {
    int passed = -1;
    ssize_t n = worker_channel::receive(w.channel.get(), packet_, passed);
    UniqueFd unwanted(passed);  // a worker never sends descriptors
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      // The worker closed its channel: it is ending, or it means to linger without serving.
      // Either way SIGCHLD comes, and says how.
      loop_.unwatch(w.channel.get());
      w.channel.reset();
      if (w.pid > 0 && !draining_) kill(w.pid, SIGKILL);
      return;
    }
    auto m = worker_channel::decode(packet_);
    if (m && m->type == worker_channel::Type::kChainStarted) {
      // Once: from here the worker's chain must be in the store, and checkpoints say so.
      if (!w.chain_started) ledger_.started(w.chain);
      w.chain_started = true;
      continue;
    }
    auto held = m ? w.startups.find(m->address) : w.startups.end();
    // A worker can give back only the startups it holds: a compromised one must not free room
    // for connections of other workers' sources.
    if (!m || m->type != worker_channel::Type::kSignedIn || held == w.startups.end()) {
      log::warn("worker process " + std::to_string(w.pid) + " sent a message it should not");
      continue;
    }
    context_->startups->release(m->address);
    if (--held->second == 0) w.startups.erase(held);
  }
}

void Gateway::on_fd_ready(int fd, uint32_t) {
  if (fd == signal_fd_.get()) return on_signal();
  for (size_t i = 0; i < listeners_.size(); ++i)
    if (listeners_[i].fd.get() == fd) return accept_on(i);
  for (auto& w : workers_)
    if (w.channel.get() == fd) return on_channel(w);
  for (auto& w : retiring_)
    if (w.channel.get() == fd) return on_channel(w);
}

void Gateway::on_signal() {
  signalfd_siginfo si{};
  while (read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGCHLD) {
      reap_workers();
    } else if (si.ssi_signo == SIGHUP) {
      if (!draining_) reload("SIGHUP");
    } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      if (!draining_) {
        begin_drain();
      } else if (!closing_all_) {
        log::info("second stop signal: closing all sessions now");
        closing_all_ = true;
        for_each_process([](WorkerSlot& w) {
          if (w.pid > 0) kill(w.pid, SIGTERM);
        });
      }
    }
  }
}

void Gateway::reap_workers() {
  for (auto& w : workers_) {
    if (w.pid <= 0) continue;
    int status = 0;
    pid_t r = waitpid(w.pid, &status, WNOHANG);
    if (r == w.pid) worker_ended(w, status);
  }
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    int status = 0;
    if (it->pid > 0 && waitpid(it->pid, &status, WNOHANG) == it->pid) {
      worker_ended(*it, status);
      metric_totals_.release(it->metrics_index);
      it = retiring_.erase(it);
    } else {
      ++it;
    }
  }
}

void Gateway::close_lost_records(WorkerSlot& w, const std::vector<SessionTable::OpenChain>& open,
                                 const std::string& how, const json& lost) {
  // If the worker died holding the output lock, it was writing: its pending lines may be on
  // stdout (whole, or cut and ended by the next writer's newline).
  bool was_writing = context_->output_lock->died_holding(w.pid);
  asciicast::SessionLogOptions lopts;
  lopts.instance = context_->config.instance;
  lopts.max_line = context_->config.max_line;
  lopts.signing_key = context_->signer.get();
  uint64_t closed = 0;
  for (const auto& chain : open) {
    // The table is the dead worker's word: a chain it names must be one this worker could have
    // made (its prefix: never the parent's, the signer's or another worker's), and there are no
    // more of them than connections it was handed, plus its own chain.
    bool plausible = (chain.session.rfind(w.prefix, 0) == 0 ||
                      chain.session.rfind("worker-" + w.prefix, 0) == 0) &&
                     chain.session.size() <= 32 && chain.session.rfind("gateway-", 0) != 0 &&
                     chain.session.rfind("signer-", 0) != 0 &&
                     std::all_of(chain.session.begin(), chain.session.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
                     });
    if (!plausible || closed > w.handed) {
      log::error("worker process " + std::to_string(w.pid) +
                 " left a session table entry that is not one of its sessions; ignored");
      continue;
    }
    ++closed;
    const auto& at = was_writing && chain.pending.known ? chain.pending : chain.written;
    if (at.known && at.final) continue;
    bool process_chain = chain.session.rfind("worker-", 0) == 0;
    json fields = {{"castgate", {{"lost", lost}}}};
    if (was_writing && chain.pending.known &&
        (!chain.written.known || chain.pending.seq != chain.written.seq))
      fields["castgate"]["lost"]["cut"] = true;
    asciicast::SessionLog log(lopts, chain.session, asciicast::Endpoint{"", 0}, *out_,
                              std::make_shared<asciicast::Backlog>(SIZE_MAX), *context_->clock);
    if (at.known) log.resume(at.seq + 1, at.hash);
    log.end(EventKind{process_chain ? "worker.lost" : "session.lost", "failure",
                      process_chain ? "the castgate worker process " + how
                                    : "the castgate worker process serving this session " + how +
                                          "; events it had not yet written are lost"},
            std::move(fields));
  }
}

void Gateway::worker_ended(WorkerSlot& w, int status) {
  pid_t pid = w.pid;
  w.pid = 0;
  if (w.channel) {
    loop_.unwatch(w.channel.get());
    w.channel.reset();
  }
  for (auto& [ip, count] : w.startups)
    for (int i = 0; i < count; ++i) context_->startups->release(ip);
  w.startups.clear();
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  json lost{{"worker_pid", pid}};
  std::string how;
  if (WIFSIGNALED(status)) {
    lost["signal"] = WTERMSIG(status);
    how = std::string("ended unexpectedly (killed by signal ") + std::to_string(WTERMSIG(status)) +
          ", " + strsignal(WTERMSIG(status)) + ")";
  } else {
    lost["exit_status"] = WEXITSTATUS(status);
    how = "ended unexpectedly (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
  }
  auto open = w.table->open_chains();
  // Its chain ended: with its own worker.stop, or with the worker.lost written below.
  ledger_.ended(w.chain);
  size_t sessions = 0;
  for (const auto& c : open)
    if (c.session.rfind("worker-", 0) != 0) ++sessions;
  if (clean && open.empty()) {
    log::info("worker process " + std::to_string(w.index) + " (pid " + std::to_string(pid) +
              ") stopped");
  } else {
    exit_code_ = 1;
    log::error("worker process " + std::to_string(w.index) + " (pid " + std::to_string(pid) + ") " +
               how + ": " + std::to_string(sessions) + " sessions lost" +
               (draining_ || w.retiring ? "" : "; starting another"));
    close_lost_records(w, open, how, lost);
    json f{{"castgate",
            {{"worker", {{"index", w.index}, {"pid", pid}}}, {"sessions_lost", sessions}}}};
    f["castgate"]["lost"] = lost;
    gateway_log_->emit(EventKind{"worker.lost", "failure", "a worker process " + how}, f);
    ++worker_restarts_;
  }
  metric_totals_.observe(w.metrics_index, w.metrics->read());
  metric_totals_.retire(w.metrics_index);
  w.metrics->clear();
  w.table->clear();
  if (draining_ || w.retiring) return;  // a retired worker's place has its successor
  // A worker that dies right after it started will likely do so again (RestartBackoff).
  schedule_spawn(w, w.restarts.died(context_->clock->steady_now()));
}

void Gateway::schedule_spawn(WorkerSlot& w, std::chrono::milliseconds delay) {
  int index = w.index;
  loop_.add_timer(delay, [this, index] {
    WorkerSlot& slot = workers_[static_cast<size_t>(index)];
    if (draining_ || slot.pid > 0) return;
    try_spawn(slot);
  });
}

void Gateway::try_spawn(WorkerSlot& w) {
  try {
    spawn(w);
  } catch (const std::exception& e) {
    // The signer not answering for a while, a fork failing: try again, not never.
    log::error(std::string("cannot start a worker process: ") + e.what() + "; retrying in 2s");
    schedule_spawn(w, std::chrono::milliseconds(2000));
  }
}

void Gateway::begin_drain() {
  draining_ = true;
  context_->draining.store(true);
  for (auto& l : listeners_) {
    loop_.unwatch(l.fd.get());
    l.fd.reset();
  }
  size_t live = live_sessions();
  auto grace = context_->config.shutdown_grace;
  log::info("stop signal: no new connections; " + std::to_string(live) +
            " live sessions may continue for " + std::to_string(grace.count()) + "s");
  gateway_log_->emit(
      EventKind{"gateway.draining", "", ""},
      json{{"castgate", {{"live_sessions", live}, {"grace_seconds", grace.count()}}}});
  for_each_process([](WorkerSlot& w) {
    if (w.pid > 0) kill(w.pid, SIGTERM);
  });
  drain_deadline_.begin(context_->clock->steady_now(), grace);
}

void Gateway::reload(const char* trigger) {
  RuleSet rules;
  json f;
  f["castgate"]["trigger"] = trigger;
  f["castgate"]["config"] = context_->rules_digest;  // in force before
  std::vector<RuleFile> attempted;
  try {
    if (!reload_blocked_.empty()) throw std::runtime_error(reload_blocked_);
    rules = load_rule_set(context_->config, context_->signer->has_user_ca(), &attempted);
  } catch (const std::exception& e) {
    // Looked at again when one of the files it read, or tried to, changes (a missing one may
    // appear), or one in force does: not at every pass.
    watched_rules_ = attempted;
    for (const auto& in_force : context_->rule_files)
      if (std::none_of(attempted.begin(), attempted.end(),
                       [&](const RuleFile& a) { return a.path == in_force.path; })) {
        watched_rules_.push_back(in_force);
        watched_rules_.back().stamp = FileStamp::of(in_force.path);
      }
    std::string why = e.what();
    if (why.find("Permission denied") != std::string::npos)
      why +=
          " (after its start castgate reads only the directories its configuration was in "
          "then; a file elsewhere takes a restart)";
    ++reloads_failed_;
    last_reload_ok_ = false;
    log::error(std::string("configuration reload (") + trigger + ") refused: " + why +
               "; the configuration in force stays");
    f["castgate"]["error"] = why;
    gateway_log_->emit(EventKind{"config.reload", "failure", why}, std::move(f));
    return;
  }
  for (auto& w : rules.warnings) log::warn(w);
  ++reloads_ok_;
  last_reload_ok_ = true;
  json files = json::array(), changed = json::array();
  for (const auto& file : rules.files) {
    json entry{{"option", file.option}, {"path", file.path}};
    if (!file.sha256.empty()) entry["sha256"] = file.sha256;
    files.push_back(entry);
    bool same = std::any_of(
        context_->rule_files.begin(), context_->rule_files.end(), [&](const RuleFile& old) {
          return old.option == file.option && old.path == file.path && old.sha256 == file.sha256 &&
                 (!file.sha256.empty() || old.stamp == file.stamp);
        });
    if (!same) changed.push_back(file.path);
  }
  watched_rules_ = rules.files;
  if (rules.digest == context_->rules_digest) {
    log::info(std::string("configuration reload (") + trigger + "): nothing changed");
    context_->rule_files = std::move(rules.files);  // their new stamps
    return;
  }
  f["castgate"]["config"] = rules.digest;
  f["castgate"]["previous_config"] = context_->rules_digest;
  f["castgate"]["files"] = std::move(files);
  f["castgate"]["changed"] = changed;
  install_rule_set(*context_, std::move(rules));
  size_t retired = 0;
  for (auto& w : workers_)
    if (w.pid > 0 && replace_worker(w)) ++retired;
  f["castgate"]["workers_retiring"] = retired;
  log::info(std::string("configuration reloaded (") + trigger + "): " + changed.dump() +
            " changed; new connections get the new rules, and " + std::to_string(retired) +
            " worker processes serve the live ones under the rules they started with");
  gateway_log_->emit(EventKind{"config.reload", "success", ""}, std::move(f));
  limit_retiring();
}

bool Gateway::replace_worker(WorkerSlot& w) {
  // The successor first: if it cannot start, the worker in place serves on (with the rules it
  // has) and is replaced at a later watchdog pass, rather than leaving nobody to serve.
  WorkerSlot fresh;
  fresh.index = w.index;
  fresh.restarts = w.restarts;
  fresh.table = std::make_unique<SessionTable>(kSessionTableSlots);
  fresh.metrics = std::make_unique<WorkerMetrics>();
  fresh.metrics_index = metric_totals_.add();
  try {
    spawn(fresh);
  } catch (const std::exception& e) {
    metric_totals_.release(fresh.metrics_index);
    w.stale = true;
    log::error(std::string("cannot start a worker process with the reloaded configuration: ") +
               e.what() + "; worker process " + std::to_string(w.index) +
               " serves on with the earlier one, and is replaced when a start succeeds");
    return false;
  }
  w.retiring = true;
  w.stale = false;
  w.stuck.cleared();
  retiring_.push_back(std::move(w));
  w = std::move(fresh);
  tell_retiring();
  return true;
}

void Gateway::limit_retiring() {
  // Each retired worker process is a process with its sessions' memory: past the limit the
  // oldest end theirs (after the grace period, as on a stop), never a reload refused for it.
  // Never fewer than one reload's worth.
  size_t limit =
      std::max<size_t>(static_cast<size_t>(context_->config.max_retired_workers), workers_.size());
  size_t draining = 0;
  for (const auto& w : retiring_) draining += w.told_to_drain;
  for (auto& w : retiring_) {
    if (retiring_.size() - draining <= limit) break;
    if (w.told_to_drain || w.pid <= 0) continue;
    log::warn("more than " + std::to_string(limit) +
              " worker processes serve sessions under earlier configurations: the oldest (pid " +
              std::to_string(w.pid) + ") ends its sessions");
    kill(w.pid, SIGUSR1);
    w.told_to_drain = true;
    ++draining;
  }
}

void Gateway::tell_retiring() {
  auto now = context_->clock->steady_now();
  for (auto& w : retiring_) {
    if (w.told_to_retire || w.pid <= 0 || !w.channel) continue;
    worker_channel::Message retire;
    retire.type = worker_channel::Type::kRetire;
    if (worker_channel::send(w.channel.get(), retire)) {
      w.told_to_retire = true;
      continue;
    }
    // A full channel: said again at the next watchdog pass; one that stays full is not
    // served by its worker, which is stopped (its records are closed like a crashed one's).
    if (w.stuck.full(now)) kill(w.pid, SIGKILL);
  }
}

void Gateway::report_refusals() {
  // Refusals are counted and written once per watchdog pass, one event per reason: a flood of
  // connections must not become a flood of lines.
  static constexpr const char* kReasons[] = {
      "the gateway is shutting down", "too many connections are signing in at once",
      "many connections are signing in: random early drop",
      "too many connections from one source are signing in at once",
      "no worker process is running"};
  for (size_t r = 0; r < refused_.size(); ++r) {
    if (refused_[r] == 0) continue;
    refused_total_[r] += refused_[r];
    json f{{"castgate", {{"count", refused_[r]}, {"refusal", kAdmissionRefusals[r]}}}};
    if (r == static_cast<size_t>(Refusal::kSourceFull)) {
      json sources = json::array();
      for (const auto& src : refused_sources_)
        if (sources.size() < 16) sources.push_back(src);
      f["castgate"]["sources"] = std::move(sources);
    }
    gateway_log_->emit(EventKind{"connection.refused", "failure", kReasons[r]}, std::move(f));
    log::warn("refused " + std::to_string(refused_[r]) + " connections: " + kReasons[r]);
    refused_[r] = 0;
  }
  refused_sources_.clear();
}

void Gateway::checkpoint(bool last) {
  checkpoint_due_.done(context_->clock->steady_now());
  asciicast::write_checkpoint(*gateway_log_, ++checkpoints_, context_->config.checkpoint_interval,
                              ledger_.take(), last);
}

void Gateway::watchdog() {
  report_refusals();
  tell_retiring();
  // A mounted configuration (a ConfigMap) changes by its files being replaced: looked at every
  // second, reloaded when one is not as it was read.
  auto now = context_->clock->steady_now();
  if (!draining_ && rules_look_due_.due(now)) {
    rules_look_due_.done(now);
    if (rule_files_changed(watched_rules_)) reload("file change");
    for (auto& w : workers_)
      if (w.stale && w.pid > 0 && !draining_) replace_worker(w);
  }
  publish_health();
  if (checkpoint_due_.due(context_->clock->steady_now())) checkpoint(false);
  if (draining_) {
    bool any = false;
    for_each_process([&any](WorkerSlot& w) { any = any || w.pid > 0; });
    if (!any) {
      loop_.stop();
      return;
    }
    // The workers close their sessions when the grace period is over; one that does not end
    // soon after is stopped, and its records are closed for it.
    if (drain_deadline_.overrun(context_->clock->steady_now()))
      for_each_process([](WorkerSlot& w) {
        if (w.pid > 0) kill(w.pid, SIGKILL);
      });
  }
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
}

int Gateway::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGHUP);
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) throw std::runtime_error("signalfd failed");
  loop_.watch(signal_fd_.get(), EPOLLIN, this);
  for (auto& l : listeners_) loop_.watch(l.fd.get(), EPOLLIN, this);

  std::string listening;
  for (auto& l : listeners_) listening += (listening.empty() ? "" : ", ") + l.spec.text();
  log::info("listening on " + listening + " with " + std::to_string(workers_.size()) +
            " worker processes of " + std::to_string(context_->config.workers) + " threads");
  log::info("recording key " + asciicast::recording_key_id(context_->signer->public_key_raw()) +
            ": " + ed25519_public_line(context_->signer->public_key_raw(), "castgate-recording"));
  json f;
  f["castgate"]["listeners"] = json::array();
  for (auto& l : listeners_) f["castgate"]["listeners"].push_back(l.spec.text());
  f["castgate"]["recording_key"] = asciicast::recording_key_id(context_->signer->public_key_raw());
  f["castgate"]["recording_enabled"] = context_->config.recording_enabled;
  f["castgate"]["worker_processes"] = workers_.size();
  f["castgate"]["config"] = context_->rules_digest;
  gateway_log_->emit(EventKind{"gateway.start", "success", ""}, f);
  watched_rules_ = context_->rule_files;
  for (const auto& dir : rule_directories_with_keys(*context_))
    reload_blocked_ = "castgate cannot reload its configuration: " + dir +
                      " also holds the signer's keys, which its parent process may not read; "
                      "keep the configuration in a directory of its own (a restart reads it)";
  for (auto& w : workers_) spawn(w);
  // Attaching the workers was the signer's first work: its audit chain has begun.
  ledger_.started(context_->signer_chain);
  write_ports_file();
  // Every file is read and written: from here on the parent reads only what its workers may.
  auto confined = sandbox::confine_parent(parent_readable(*context_));
  log::info("parent process confined: landlock " + confined.landlock);
  // Started confined, like everything after this point.
  publish_health();
  if (health_) health_thread_ = std::thread([this] { health_loop_.run(); });
  checkpoint_due_.done(context_->clock->steady_now());
  // The watchdog's own timer is the event loop's, on real time like every loop's (Worker::tick);
  // what it decides reads the context's clock.
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
  loop_.run();

  checkpoint(true);
  gateway_log_->end(EventKind{"gateway.stop", "", "stopped"}, json::object());
  log::info("stopped");
  return out_->ok() ? exit_code_ : 1;
}

std::string print_ssh_config(const GatewayConfig& config) {
  SshConfigRequest request = config.ssh_config;
  if (config.targets_file.empty()) throw std::runtime_error("ssh-config needs --targets");
  request.target_names =
      Targets::parse(read_file(config.targets_file), config.targets_file).names();
  if (config.host_key_files.empty()) throw std::runtime_error("ssh-config needs --host-key");
  for (const auto& path : config.host_key_files) {
    ssh::Key key = load_ssh_private_key(path);
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK || !b64)
      throw std::runtime_error(path + ": cannot export the public key");
    ssh::CharPtr owner(b64);
    request.host_keys.push_back(std::string(ssh_key_type_to_char(ssh_key_type(key.get()))) + " " +
                                b64);
  }
  switch (config.ssh_config_part) {
    case SshConfigPart::kConfig:
      return ssh_config_block(request);
    case SshConfigPart::kKnownHosts:
      return ssh_known_hosts(request);
    case SshConfigPart::kScript:
      break;
  }
  return ssh_config_script(request);
}

std::string print_public_keys(const GatewayContext& ctx) {
  std::string out;
  if (ctx.config.print_user_ca) {
    if (!ctx.signer->has_user_ca()) throw std::runtime_error("--print-user-ca needs --user-ca-key");
    out += ctx.signer->ca_public_line() + "\n";
  }
  if (ctx.config.print_recording_key) {
    if (ctx.config.recording_key_file.empty())
      throw std::runtime_error("--print-recording-key needs --recording-key");
    out += ed25519_public_line(ctx.signer->public_key_raw(), "castgate-recording") + "\n";
  }
  return out;
}

}  // namespace castgate
