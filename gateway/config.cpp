#include "gateway/config.h"

#include <libssh/libssh.h>
#include <openssl/crypto.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "common/fault_injection.h"
#include "common/text.h"
#include "gateway/admission.h"

namespace po = boost::program_options;

namespace castgate {

std::string ListenSpec::text() const {
  std::string a = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  return a + ":" + std::to_string(port) + (target.empty() ? "" : "=" + target);
}

ListenSpec parse_listen(const std::string& text) {
  ListenSpec spec;
  std::string addr = text;
  if (auto eq = addr.find('='); eq != std::string::npos) {
    spec.target = addr.substr(eq + 1);
    addr = addr.substr(0, eq);
  }
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("--listen " + text + ": expected ADDRESS:PORT[=TARGET]");
  spec.address = addr.substr(0, colon);
  if (spec.address.size() >= 2 && spec.address.front() == '[' && spec.address.back() == ']')
    spec.address = spec.address.substr(1, spec.address.size() - 2);
  std::string port = addr.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw std::runtime_error("--listen " + text + ": bad port");
  spec.port = std::stoi(port);
  if (spec.address.empty()) throw std::runtime_error("--listen " + text + ": missing address");
  return spec;
}

namespace {

// What each option means, by the group --help shows it in. `all` (every group but the last two)
// is what the environment and the config file may set; `everything` what the command line may.
struct OptionSets {
  po::options_description all;
  po::options_description everything;
};

po::options_description general_options() {
  po::options_description general("General");
  general.add_options()("help,h", "show this help")("version", "show the version")(
      "config,c", po::value<std::string>(), "read settings from this file (key = value lines)")(
      "log-level", po::value<std::string>()->default_value("info"),
      "diagnostics on stderr: debug, info, warn, error")(
      "instance", po::value<std::string>(),
      "name of this gateway instance in events (default: host name)");
  return general;
}

po::options_description network_options() {
  po::options_description network("Listening and routing");
  network.add_options()(
      "listen", po::value<std::vector<std::string>>()->composing(),
      "ADDRESS:PORT[=TARGET], repeatable. With =TARGET every connection to this address goes to "
      "that target; without it users pick one with login@target as SSH user name")(
      "worker-processes", po::value<int>()->default_value(2),
      "processes serving connections (1..64): a fault in one costs only its own sessions")(
      "max-retired-workers", po::value<int>()->default_value(32),
      "worker processes replaced by configuration reloads that may still serve their sessions "
      "(1..1024); past it the oldest ends its sessions after the shutdown grace period")(
      "workers", po::value<int>()->default_value(0),
      "event loop threads in each worker process (0 = CPUs / worker processes, at least 1)")(
      "health-listen", po::value<std::string>(),
      "ADDRESS:PORT for HTTP health probes (GET /healthz); not an SSH port")(
      "ports-file", po::value<std::string>(), "write the bound ports here once listening (tests)");
  return network;
}

po::options_description key_options() {
  po::options_description keys("Keys and trust");
  keys.add_options()("host-key", po::value<std::vector<std::string>>()->composing(),
                     "SSH host key file (OpenSSH or PEM), repeatable")(
      "user-ca-key", po::value<std::string>(),
      "Ed25519 key that signs the per-session user certificates")(
      "recording-key", po::value<std::string>(),
      "Ed25519 key that signs each session's final event")(
      "known-hosts", po::value<std::string>(), "pinned target host keys (known_hosts format)")(
      "certificate-validity", po::value<std::string>()->default_value("5m"),
      "lifetime of the per-session certificates")(
      "max-certificate-validity", po::value<std::string>()->default_value("1h"),
      "the signer process refuses certificates valid longer than this (targets may not ask "
      "for more)")("print-user-ca",
                   "print the user CA public key (for TrustedUserCAKeys) and exit")(
      "print-recording-key", "print the recording public key (for the player) and exit");
  return keys;
}

po::options_description access_options() {
  po::options_description access("Identities and policy");
  access.add_options()("identities", po::value<std::string>(),
                       "public keys mapped to identities (authorized_keys layout)")(
      "policy", po::value<std::string>(), "access policy (JSON)")(
      "targets", po::value<std::string>(), "the targets users may reach (JSON)")(
      "oidc-config", po::value<std::string>(),
      "sign-in with an OpenID provider (device flow) and trusted workload token issuers (JSON)");
  return access;
}

po::options_description limit_options() {
  po::options_description limits("Limits and timeouts");
  limits.add_options()("preauth-timeout", po::value<std::string>()->default_value("30s"),
                       "time allowed to sign in")(
      "session-end-warning", po::value<std::string>()->default_value("5m"),
      "warn users this long before a policy rule's max_session_length ends their session")(
      "idle-timeout", po::value<std::string>()->default_value("0"),
      "close sessions without traffic for this long (0 = never)")(
      "jump-idle-timeout", po::value<std::string>()->default_value("10m"),
      "close a connection without a target (a ProxyJump's) this long after its last ProxyJump "
      "channel")("shutdown-grace", po::value<std::string>()->default_value("30s"),
                 "on SIGTERM, time live sessions may go on before they are closed")(
      "connect-timeout", po::value<std::string>()->default_value("10s"),
      "time allowed to reach and sign in to a target")(
      "max-unauthenticated", po::value<int>(),
      "connections allowed to be signing in at once; more are refused (FULL of --max-startups)")(
      "max-startups", po::value<std::string>()->default_value("64:30:256"),
      "START:RATE:FULL as OpenSSH's MaxStartups: from START signing-in connections on, refuse "
      "RATE% of new ones, rising to all of them at FULL")(
      "per-source-max-startups", po::value<int>()->default_value(16),
      "signing-in connections one source (IPv4 address, IPv6 /64) may have")(
      "device-sign-in-rate", po::value<int>()->default_value(6),
      "device sign-ins one source may start per minute")("max-token-attempts",
                                                         po::value<int>()->default_value(3),
                                                         "workload tokens a connection may try")(
      "max-channels", po::value<int>()->default_value(64), "channels per connection")(
      "max-auth-attempts", po::value<int>()->default_value(20), "sign-in attempts per connection")(
      "max-channel-buffer", po::value<size_t>()->default_value(4u << 20),
      "bytes a peer may send past its channel window (a client ignoring flow control) before it "
      "is disconnected")("max-pending-requests", po::value<int>()->default_value(32),
                         "channel requests waiting for the target, per channel")(
      "max-env", po::value<int>()->default_value(64), "environment requests per channel")(
      "max-env-size", po::value<size_t>()->default_value(8192),
      "bytes of one environment request (name and value)")(
      "max-terminal-cells", po::value<long>()->default_value(250000),
      "columns x rows over all terminals of a connection")(
      "max-request-rate", po::value<int>()->default_value(20),
      "channel and global requests per second a connection may send (bursts of 10 times)");
  return limits;
}

po::options_description recording_options() {
  po::options_description recording("Recording");
  recording.add_options()("max-line", po::value<size_t>()->default_value(8192),
                          "longest stdout line in bytes (container runtimes split at 16 KiB)")(
      "recording-stall-limit", po::value<std::string>()->default_value("10s"),
      "when stdout is blocked this long, live sessions end and new ones are refused")(
      "searchable-text", po::bool_switch(),
      "also write terminal text as ECS message, searchable in Elasticsearch/OpenSearch (each "
      "line then holds it twice)")(
      "checkpoint-interval", po::value<std::string>()->default_value("60s"),
      "how often each castgate process writes a signed checkpoint of the records it started, "
      "ended and holds open (1s to 1h)")(
      "session-backlog", po::value<size_t>()->default_value(1u << 20),
      "recording bytes a session may have queued before it stops reading from its peers")(
      "banner", po::value<std::string>(),
      "text shown before sign-in, e.g. that sessions are recorded")(
      "banner-file", po::value<std::string>(), "read the banner from this file")(
      "alert-rules", po::value<std::string>(),
      "extra alert patterns for commands and file paths (JSON list)")(
      "locks", po::value<std::string>(),
      "locks (JSON): identities, groups or targets whose sessions are ended and refused; the "
      "file is watched, changes apply within seconds")("no-default-alerts", po::bool_switch(),
                                                       "do not use the built-in alert patterns")(
      "demo", po::bool_switch(), "generate host and recording keys in memory (make demo)");
  return recording;
}

// Read from the command line only: a deployment's environment or config file cannot switch
// recording off.
po::options_description benchmark_options() {
  po::options_description command_line_only("Benchmarks (command line only)");
  command_line_only.add_options()(
      "benchmark-disable-recording", po::bool_switch(),
      "BENCHMARKS ONLY: relay without recording, to measure what recording costs");
  return command_line_only;
}

po::options_description ssh_config_options() {
  po::options_description ssh_config("castgate ssh-config (command line only)");
  ssh_config.add_options()("print-ssh-config", po::bool_switch(),
                           "print the ssh_config users paste (also: castgate ssh-config ...)")(
      "gateway", po::value<std::string>(),
      "ssh-config: HOST[:PORT] users reach the gateway by (default port 22)")(
      "domain", po::value<std::vector<std::string>>()->composing(),
      "ssh-config: extra Host pattern routed through the gateway, such as *.int (repeatable)")(
      "format", po::value<std::string>()->default_value("script"),
      "ssh-config: script (writes both files), config or known-hosts")(
      "control-persist", po::value<std::string>()->default_value("10m"),
      "ssh-config: how long the signed-in connection stays open after the last command")(
      "dir", po::value<std::string>()->default_value("~/.ssh/castgate"),
      "ssh-config: where users keep the generated config, known_hosts and control sockets");
  return ssh_config;
}

OptionSets describe_options() {
  OptionSets sets;
  sets.all.add(general_options())
      .add(network_options())
      .add(key_options())
      .add(access_options())
      .add(limit_options())
      .add(recording_options());
  sets.everything.add(sets.all).add(benchmark_options()).add(ssh_config_options());
  return sets;
}

// CASTGATE_LISTEN -> listen, CASTGATE_USER_CA_KEY -> user-ca-key, ...; "" for a variable that
// names no option of `all`.
std::string option_of_variable(const po::options_description& all, const std::string& env) {
  const std::string prefix = "CASTGATE_";
  if (env.rfind(prefix, 0) != 0) return "";
  std::string name = env.substr(prefix.size());
  for (auto& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
  return all.find_nothrow(name, false) ? name : "";
}

// The command line first, then the environment, then the config file: the first to set an
// option wins.
po::variables_map read_settings(int argc, const char* const argv[], const OptionSets& sets) {
  po::variables_map vm;
  if (std::getenv("CASTGATE_BENCHMARK_DISABLE_RECORDING"))
    throw std::runtime_error(
        "CASTGATE_BENCHMARK_DISABLE_RECORDING: recording can only be switched off on the command "
        "line, for benchmarks; remove this variable");
  try {
    po::store(po::parse_command_line(argc, argv, sets.everything), vm);
    po::store(po::parse_environment(
                  sets.all,
                  [&sets](const std::string& env) { return option_of_variable(sets.all, env); }),
              vm);
    if (vm.count("config")) {
      std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw std::runtime_error("cannot read config file " + path);
      po::store(po::parse_config_file(in, sets.all), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::runtime_error(e.what());
  }
  return vm;
}

// --help or --version: printed, and true (castgate then does nothing else).
bool print_help_or_version(const po::variables_map& vm, const po::options_description& everything) {
  if (vm.count("help")) {
    std::cout
        << "castgate: an SSH gateway that records every session\n\n"
        << "usage: castgate --listen ADDR:PORT[=TARGET] --host-key FILE --user-ca-key FILE\n"
        << "                --identities FILE --policy FILE --targets FILE --known-hosts FILE\n"
        << "Every option can also be set as CASTGATE_<OPTION> (upper case, '_' for '-') or in\n"
        << "the --config file.\n"
        << everything << "\n";
    return true;
  }
  if (vm.count("version")) {
    // The libraries actually loaded, not the ones built against: a benchmark or a bug report
    // must name the libssh that ran.
    std::cout << "castgate 0.1.0 (libssh " << ssh_version(0) << ", "
              << OpenSSL_version(OPENSSL_VERSION) << ")"
              << (kFaultInjection ? " [test build: fault injection]" : "") << "\n";
    return true;
  }
  return false;
}

// The read_* functions copy settings into the configuration, checking those whose check decides
// which error a bad command line reports first; validate() checks the rest once all are read.
// Their order is the order of the checks.

void read_string(const po::variables_map& vm, const char* name, std::string& out) {
  if (vm.count(name)) out = vm[name].as<std::string>();
}

std::chrono::seconds duration_option(const po::variables_map& vm, const char* name) {
  auto text = vm[name].as<std::string>();
  auto d = parse_duration(text);
  if (!d) throw std::runtime_error(std::string("--") + name + ": not a duration: " + text);
  return *d;
}

void read_listeners(const po::variables_map& vm, GatewayConfig& c) {
  if (vm.count("listen"))
    for (auto& l : vm["listen"].as<std::vector<std::string>>())
      c.listens.push_back(parse_listen(l));
  if (vm.count("health-listen"))
    c.health_listen = parse_listen(vm["health-listen"].as<std::string>());
  read_string(vm, "ports-file", c.ports_file);
}

void read_files(const po::variables_map& vm, GatewayConfig& c) {
  if (vm.count("host-key")) c.host_key_files = vm["host-key"].as<std::vector<std::string>>();
  read_string(vm, "user-ca-key", c.user_ca_key_file);
  read_string(vm, "recording-key", c.recording_key_file);
  read_string(vm, "identities", c.identities_file);
  read_string(vm, "policy", c.policy_file);
  read_string(vm, "targets", c.targets_file);
  read_string(vm, "known-hosts", c.known_hosts_file);
  read_string(vm, "oidc-config", c.oidc_config_file);
  read_string(vm, "instance", c.instance);
  read_string(vm, "banner", c.banner);
  read_string(vm, "alert-rules", c.alert_rules_file);
  read_string(vm, "locks", c.locks_file);
  c.default_alerts = !vm["no-default-alerts"].as<bool>();
  read_string(vm, "log-level", c.log_level);
  if (vm.count("banner-file")) c.banner = read_file(vm["banner-file"].as<std::string>());
}

void read_durations(const po::variables_map& vm, GatewayConfig& c) {
  c.certificate_validity = duration_option(vm, "certificate-validity");
  c.max_certificate_validity = duration_option(vm, "max-certificate-validity");
  c.preauth_timeout = duration_option(vm, "preauth-timeout");
  c.idle_timeout = duration_option(vm, "idle-timeout");
  c.session_end_warning = duration_option(vm, "session-end-warning");
  c.jump_idle_timeout = duration_option(vm, "jump-idle-timeout");
  if (c.jump_idle_timeout.count() < 1)
    throw std::runtime_error("--jump-idle-timeout must be at least 1s");
  c.shutdown_grace = duration_option(vm, "shutdown-grace");
  c.connect_timeout = duration_option(vm, "connect-timeout");
  c.recording_stall_limit = duration_option(vm, "recording-stall-limit");
  c.checkpoint_interval = duration_option(vm, "checkpoint-interval");
  if (c.checkpoint_interval.count() < 1 || c.checkpoint_interval.count() > 3600)
    throw std::runtime_error("--checkpoint-interval must be between 1s and 1h");
}

void read_admission(const po::variables_map& vm, GatewayConfig& c) {
  auto startups = parse_startups(vm["max-startups"].as<std::string>());
  c.max_startups_start = startups.start;
  c.max_startups_rate = startups.rate_percent;
  c.max_unauthenticated = startups.full;
  if (vm.count("max-unauthenticated")) {
    c.max_unauthenticated = vm["max-unauthenticated"].as<int>();
    c.max_startups_start = std::min(c.max_startups_start, c.max_unauthenticated);
  }
  c.per_source_max_startups = vm["per-source-max-startups"].as<int>();
  c.device_sign_in_rate = vm["device-sign-in-rate"].as<int>();
  c.max_token_attempts = vm["max-token-attempts"].as<int>();
  c.max_auth_attempts = vm["max-auth-attempts"].as<int>();
}

void read_connection_limits(const po::variables_map& vm, GatewayConfig& c) {
  c.max_channel_buffer = vm["max-channel-buffer"].as<size_t>();
  c.max_pending_requests = vm["max-pending-requests"].as<int>();
  c.max_env = vm["max-env"].as<int>();
  c.max_env_size = vm["max-env-size"].as<size_t>();
  c.max_terminal_cells = vm["max-terminal-cells"].as<long>();
  c.max_request_rate = vm["max-request-rate"].as<int>();
  c.max_channels = vm["max-channels"].as<int>();
}

void read_processes_and_recording(const po::variables_map& vm, GatewayConfig& c) {
  c.workers = vm["workers"].as<int>();
  c.worker_processes = vm["worker-processes"].as<int>();
  c.max_retired_workers = vm["max-retired-workers"].as<int>();
  c.max_line = vm["max-line"].as<size_t>();
  c.session_backlog = vm["session-backlog"].as<size_t>();
  c.searchable_text = vm["searchable-text"].as<bool>();
  c.recording_enabled = !vm["benchmark-disable-recording"].as<bool>();
  c.demo = vm["demo"].as<bool>();
  c.print_user_ca = vm.count("print-user-ca") > 0;
  c.print_recording_key = vm.count("print-recording-key") > 0;
}

// --gateway HOST[:PORT]
void read_ssh_config_gateway(const po::variables_map& vm, SshConfigRequest& request) {
  if (!vm.count("gateway"))
    throw std::runtime_error("ssh-config needs --gateway HOST[:PORT] (the name users connect to)");
  std::string g = vm["gateway"].as<std::string>();
  auto colon = g.rfind(':');
  request.gateway_host = g.substr(0, colon);
  if (colon == std::string::npos) return;
  try {
    size_t used = 0;
    request.gateway_port = std::stoi(g.substr(colon + 1), &used);
    if (used != g.size() - colon - 1) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    throw std::runtime_error("--gateway: bad port in " + g);
  }
}

void read_ssh_config(const po::variables_map& vm, GatewayConfig& c) {
  c.print_ssh_config = vm["print-ssh-config"].as<bool>();
  if (!c.print_ssh_config) return;
  read_ssh_config_gateway(vm, c.ssh_config);
  if (vm.count("domain")) c.ssh_config.patterns = vm["domain"].as<std::vector<std::string>>();
  c.ssh_config.control_persist = vm["control-persist"].as<std::string>();
  c.ssh_config.dir = vm["dir"].as<std::string>();
  std::string format = vm["format"].as<std::string>();
  if (format == "script")
    c.ssh_config_part = SshConfigPart::kScript;
  else if (format == "config")
    c.ssh_config_part = SshConfigPart::kConfig;
  else if (format == "known-hosts")
    c.ssh_config_part = SshConfigPart::kKnownHosts;
  else
    throw std::runtime_error("--format must be script, config or known-hosts");
}

void validate_timeouts(const GatewayConfig& c) {
  if (c.certificate_validity < std::chrono::seconds(10))
    throw std::runtime_error("--certificate-validity must be at least 10s");
  if (c.certificate_validity > c.max_certificate_validity)
    throw std::runtime_error("--certificate-validity is longer than --max-certificate-validity");
  if (c.preauth_timeout.count() < 1)
    throw std::runtime_error("--preauth-timeout must be at least 1s");
  if (c.connect_timeout.count() < 1)
    throw std::runtime_error("--connect-timeout must be at least 1s");
}

void validate_admission(const GatewayConfig& c) {
  if (c.max_unauthenticated < 1) throw std::runtime_error("--max-unauthenticated must be positive");
  if (c.per_source_max_startups < 1)
    throw std::runtime_error("--per-source-max-startups must be positive");
  if (c.device_sign_in_rate < 1) throw std::runtime_error("--device-sign-in-rate must be positive");
  if (c.max_token_attempts < 1) throw std::runtime_error("--max-token-attempts must be positive");
}

void validate_connection_limits(const GatewayConfig& c) {
  if (c.max_channel_buffer < (2u << 20))
    throw std::runtime_error(
        "--max-channel-buffer must be at least 2 MiB (libssh's window is 1.28 MB)");
  if (c.max_pending_requests < 4) throw std::runtime_error("--max-pending-requests must be >= 4");
  if (c.max_env < 0) throw std::runtime_error("--max-env must not be negative");
  if (c.max_env_size < 64) throw std::runtime_error("--max-env-size must be at least 64");
  if (c.max_terminal_cells < 80 * 24)
    throw std::runtime_error("--max-terminal-cells must be at least 1920 (80x24)");
  if (c.max_request_rate < 1) throw std::runtime_error("--max-request-rate must be positive");
  if (c.max_channels < 1) throw std::runtime_error("--max-channels must be positive");
}

// Also picks the default thread count (--workers 0), which needs --worker-processes checked.
void validate_processes(GatewayConfig& c) {
  if (c.workers < 0 || c.workers > 256) throw std::runtime_error("--workers must be 0..256");
  if (c.worker_processes < 1 || c.worker_processes > 64)
    throw std::runtime_error("--worker-processes must be 1..64");
  if (c.max_retired_workers < 1 || c.max_retired_workers > 1024)
    throw std::runtime_error("--max-retired-workers must be 1..1024");
  if (c.workers == 0)
    c.workers =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / c.worker_processes);
}

void validate(GatewayConfig& c) {
  validate_timeouts(c);
  // Below 4 KiB the members every line repeats (identity, target) would crowd out its content.
  // At most 64 KiB: the signer process signs last events whole, one socket message each.
  if (c.max_line < 4096 || c.max_line > 65536)
    throw std::runtime_error("--max-line must be between 4096 and 65536");
  validate_admission(c);
  validate_connection_limits(c);
  validate_processes(c);
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error")
    throw std::runtime_error("--log-level must be debug, info, warn or error");
}

}  // namespace

std::optional<GatewayConfig> parse_config(int argc, const char* const argv[]) {
  OptionSets sets = describe_options();
  po::variables_map vm = read_settings(argc, argv, sets);
  if (print_help_or_version(vm, sets.everything)) return std::nullopt;
  GatewayConfig c;
  read_listeners(vm, c);
  read_files(vm, c);
  read_durations(vm, c);
  read_admission(vm, c);
  read_connection_limits(vm, c);
  read_processes_and_recording(vm, c);
  read_ssh_config(vm, c);
  validate(c);
  return c;
}

}  // namespace castgate
