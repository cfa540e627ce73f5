#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "asciicast/chain.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/ssh_wire.h"

namespace castgate {

using asciicast::EventKind;
using nlohmann::json;

namespace {

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
  if (config.targets_file.empty()) throw std::runtime_error("--targets is required");
  ctx->targets = Targets::parse(read_file(config.targets_file), config.targets_file);
  if (config.policy_file.empty()) throw std::runtime_error("--policy is required");
  ctx->policy = Policy::parse(read_file(config.policy_file), config.policy_file);
  if (!config.identities_file.empty())
    ctx->identities =
        IdentityKeys::parse(read_file(config.identities_file), config.identities_file);
  if (config.known_hosts_file.empty())
    throw std::runtime_error("--known-hosts is required: target host keys must be pinned");
  std::vector<std::string> warnings;
  ctx->known_hosts =
      KnownHosts::parse(read_file(config.known_hosts_file), config.known_hosts_file, &warnings);
  for (auto& w : warnings) log::warn(w);
  for (const auto& name : ctx->targets.names()) {
    const Target* t = ctx->targets.find(name);
    if (t->certificate_validity && *t->certificate_validity > config.max_certificate_validity)
      throw std::runtime_error("target " + name +
                               ": certificate_validity is longer than --max-certificate-validity");
    if (!t->static_key_path.empty()) {
      ctx->static_keys.emplace(name, load_ssh_private_key(t->static_key_path));
    } else if (!ctx->signer->has_user_ca()) {
      throw std::runtime_error("target " + name +
                               " needs the user CA (--user-ca-key) or a static_key");
    }
    if (ctx->known_hosts.key_types_for(t->known_hosts_names()).empty())
      log::warn("no host key is pinned for target " + name + "; sessions to it will be refused");
  }
  for (const auto& l : config.listens)
    if (!l.target.empty() && !ctx->targets.find(l.target))
      throw std::runtime_error("--listen " + l.text() + ": target " + l.target +
                               " is not configured");
  std::vector<asciicast::AlertRule> rules;
  if (config.default_alerts) rules = asciicast::AlertRules::defaults();
  if (!config.alert_rules_file.empty())
    for (auto& r :
         asciicast::AlertRules::parse(read_file(config.alert_rules_file), config.alert_rules_file))
      rules.push_back(std::move(r));
  ctx->alerts = asciicast::AlertRules::compile(rules);
  ctx->resolver = std::make_unique<Resolver>(2);
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
  if (!config.oidc_config_file.empty()) {
    auto oidc_config =
        oidc::OidcConfig::parse(read_file(config.oidc_config_file), config.oidc_config_file);
    ctx->oidc = std::make_unique<oidc::OidcService>(std::move(oidc_config), *ctx->clock);
    ctx->oidc->warm_up();
  }
  return ctx;
}

Gateway::Gateway(std::unique_ptr<GatewayContext> context) : context_(std::move(context)) {
  auto& cfg = context_->config;
  asciicast::StdoutWriter::Options wopts;
  wopts.fd = STDOUT_FILENO;
  wopts.lock = context_->output_lock.get();
  wopts.stall_limit =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.recording_stall_limit);
  writer_ = std::make_unique<asciicast::StdoutWriter>(wopts, [this] {
    for (auto& w : workers_) w->resume_all();
  });
  context_->sink = writer_.get();

  asciicast::SessionLogOptions lopts;
  lopts.instance = cfg.instance;
  lopts.max_line = cfg.max_line;
  lopts.signing_key = context_->signer.get();
  gateway_log_ = std::make_unique<asciicast::SessionLog>(
      lopts, "gateway-" + random_id(8), asciicast::Endpoint{"", 0}, *writer_,
      std::make_shared<asciicast::Backlog>(SIZE_MAX), *context_->clock);

  for (const auto& spec : cfg.listens) {
    Listener l;
    l.spec = spec;
    std::string error;
    auto addrs = resolve_now(spec.address, spec.port, true, error);
    if (addrs.empty()) throw std::runtime_error("--listen " + spec.text() + ": " + error);
    l.fd = socket(addrs[0].addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l.fd < 0 ||
        ::bind(l.fd, reinterpret_cast<const sockaddr*>(&addrs[0].addr), addrs[0].len) != 0 ||
        ::listen(l.fd, 1024) != 0)
      throw std::runtime_error("--listen " + spec.text() + ": " + std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    getsockname(l.fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    l.spec.port =
        ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    listeners_.push_back(l);
  }
  for (int i = 0; i < cfg.workers; ++i) workers_.push_back(std::make_unique<Worker>(*context_, i));
  if (cfg.health_listen)
    health_ = std::make_unique<HealthEndpoint>(loop_, cfg.health_listen->address,
                                               cfg.health_listen->port, [this]() -> std::string {
                                                 if (draining_) return "draining";
                                                 if (context_->signer->gone())
                                                   return "the signer process is gone";
                                                 switch (writer_->health()) {
                                                   case asciicast::SinkHealth::kStalled:
                                                     return "recording output stalled";
                                                   case asciicast::SinkHealth::kBroken:
                                                     return "recording output failed";
                                                   default:
                                                     return "";
                                                 }
                                               });
}

Gateway::~Gateway() {
  health_.reset();
  for (auto& l : listeners_)
    if (l.fd >= 0) close(l.fd);
  for (auto& w : workers_) w->stop_and_join();
  // The writer goes before the workers: its wakers post to the workers' loops.
  writer_.reset();
  workers_.clear();
  if (signal_fd_ >= 0) close(signal_fd_);
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

Worker& Gateway::pick_worker() {
  Worker* best = workers_[0].get();
  for (auto& w : workers_)
    if (w->live_sessions() < best->live_sessions()) best = w.get();
  return *best;
}

void Gateway::accept_on(const Listener& l) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
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
      close(fd);
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
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pick_worker().adopt(fd, l.spec, asciicast::Endpoint{ip, port});
  }
}

void Gateway::on_fd_ready(int fd, uint32_t) {
  if (fd == signal_fd_) return on_signal();
  for (const auto& l : listeners_)
    if (l.fd == fd) return accept_on(l);
}

void Gateway::on_signal() {
  signalfd_siginfo si{};
  while (read(signal_fd_, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      if (!draining_) {
        begin_drain();
      } else if (!closing_all_) {
        log::info("second stop signal: closing all sessions now");
        closing_all_ = true;
        for (auto& w : workers_)
          w->close_all("gateway_shutdown", "castgate is shutting down; the session was closed");
      }
    }
  }
}

void Gateway::begin_drain() {
  draining_ = true;
  context_->draining.store(true);
  for (auto& l : listeners_) {
    loop_.unwatch(l.fd);
    close(l.fd);
    l.fd = -1;
  }
  size_t live = 0;
  for (auto& w : workers_) live += w->live_sessions();
  auto grace = context_->config.shutdown_grace;
  log::info("stop signal: no new connections; " + std::to_string(live) +
            " live sessions may continue for " + std::to_string(grace.count()) + "s");
  gateway_log_->emit(
      EventKind{"gateway.draining", {"process"}, {"change"}, "", ""},
      json{{"castgate", {{"live_sessions", live}, {"grace_seconds", grace.count()}}}});
  drain_deadline_ = std::chrono::steady_clock::now() + grace;
}

void Gateway::report_refusals() {
  // Refusals are counted and written once per watchdog pass, one event per reason: a flood of
  // connections must not become a flood of lines.
  static constexpr const char* kReasons[] = {
      "the gateway is shutting down", "too many connections are signing in at once",
      "many connections are signing in: random early drop",
      "too many connections from one source are signing in at once"};
  static constexpr const char* kCodes[] = {"draining", "full", "early_drop", "per_source"};
  for (size_t r = 0; r < refused_.size(); ++r) {
    if (refused_[r] == 0) continue;
    json f{{"castgate", {{"count", refused_[r]}, {"refusal", kCodes[r]}}}};
    if (r == static_cast<size_t>(Refusal::kSourceFull)) {
      json sources = json::array();
      for (const auto& src : refused_sources_)
        if (sources.size() < 16) sources.push_back(src);
      f["castgate"]["sources"] = std::move(sources);
    }
    gateway_log_->emit(
        EventKind{
            "connection.refused", {"network"}, {"connection", "denied"}, "failure", kReasons[r]},
        std::move(f));
    log::warn("refused " + std::to_string(refused_[r]) + " connections: " + kReasons[r]);
    refused_[r] = 0;
  }
  refused_sources_.clear();
}

void Gateway::watchdog() {
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
  report_refusals();
  if (draining_) {
    size_t live = 0;
    for (auto& w : workers_) live += w->live_sessions();
    if (live == 0) {
      loop_.stop();
      return;
    }
    if (!closing_all_ && std::chrono::steady_clock::now() >= drain_deadline_) {
      closing_all_ = true;
      log::info("grace period over: closing " + std::to_string(live) + " sessions");
      for (auto& w : workers_)
        w->close_all("gateway_shutdown", "castgate is shutting down; the session was closed");
    }
  }
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
}

int Gateway::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::runtime_error("signalfd failed");
  loop_.watch(signal_fd_, EPOLLIN, this);
  for (auto& l : listeners_) loop_.watch(l.fd, EPOLLIN, this);
  for (auto& w : workers_) w->start();

  std::string listening;
  for (auto& l : listeners_) listening += (listening.empty() ? "" : ", ") + l.spec.text();
  log::info("listening on " + listening + " with " + std::to_string(workers_.size()) + " workers");
  log::info("recording key " + asciicast::recording_key_id(context_->signer->public_key_raw()) +
            ": " + ed25519_public_line(context_->signer->public_key_raw(), "castgate-recording"));
  json f;
  f["castgate"]["listeners"] = json::array();
  for (auto& l : listeners_) f["castgate"]["listeners"].push_back(l.spec.text());
  f["castgate"]["recording_key"] = asciicast::recording_key_id(context_->signer->public_key_raw());
  f["castgate"]["recording_enabled"] = context_->config.recording_enabled;
  gateway_log_->emit(EventKind{"gateway.start", {"process"}, {"start"}, "success", ""}, f);
  write_ports_file();
  loop_.add_timer(std::chrono::milliseconds(200), [this] { watchdog(); });
  loop_.run();

  for (auto& w : workers_) w->stop_and_join();
  gateway_log_->end(EventKind{"gateway.stop", {"process"}, {"end"}, "", "stopped"}, json::object());
  bool drained = writer_->drain(std::chrono::seconds(10));
  if (!drained) log::error("recording output did not drain within 10s; some events may be missing");
  uint64_t lost = writer_->lines_lost();
  log::info("stopped");
  return (drained && lost == 0) ? 0 : 1;
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
