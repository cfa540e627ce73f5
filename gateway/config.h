// castgate's settings, from the command line, CASTGATE_* environment variables and a config file
// (in that order of precedence), parsed with Boost.Program_options. A bad setting stops start-up
// with a message that names it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gateway/ssh_config.h"

namespace castgate {

struct ListenSpec {
  std::string address;  // IPv4/IPv6 literal or "0.0.0.0"
  int port = 0;         // 0 = pick a free port (tests)
  std::string target;   // bound target; empty for a shared listener (login@target routing)
  std::string text() const;
};

struct GatewayConfig {
  std::vector<ListenSpec> listens;
  std::optional<ListenSpec> health_listen;  // HTTP probe endpoint
  std::vector<std::string> host_key_files;
  std::string user_ca_key_file;
  std::string recording_key_file;
  std::string identities_file;
  std::string policy_file;
  std::string targets_file;
  std::string known_hosts_file;
  std::string oidc_config_file;
  std::string instance;
  std::string banner;            // shown before sign-in (USERAUTH_BANNER)
  std::string ports_file;        // where to write the bound ports (tests/demo); empty = don't
  std::string alert_rules_file;  // extra alert rules (JSON)
  std::string locks_file;        // locks (JSON, locks.h), watched while castgate runs
  bool default_alerts = true;    // the built-in alert patterns too (off: --no-default-alerts)
  std::chrono::seconds certificate_validity{300};
  std::chrono::seconds max_certificate_validity{3600};  // enforced by the signer process
  std::chrono::seconds preauth_timeout{30};
  std::chrono::seconds idle_timeout{0};  // 0 = none
  // How long before a policy rule's max_session_length ends a session its user is warned.
  std::chrono::seconds session_end_warning{300};
  // A connection without a target (a ProxyJump's, kept by ControlMaster) without a ProxyJump
  // channel for this long is closed.
  std::chrono::seconds jump_idle_timeout{600};
  int max_retired_workers = 32;  // replaced by reloads, still serving their sessions
  std::chrono::seconds shutdown_grace{30};
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds recording_stall_limit{10};
  // Each process's signed checkpoints of the chains it started, ended and holds open.
  std::chrono::seconds checkpoint_interval{60};
  bool searchable_text = false;  // terminal text also as ECS message
  // Before sign-in (see admission.h). max_unauthenticated is MaxStartups' FULL.
  int max_unauthenticated = 256;
  int max_startups_start = 64;
  int max_startups_rate = 30;
  int per_source_max_startups = 16;
  int device_sign_in_rate = 6;  // device sign-ins a source may start per minute
  int max_token_attempts = 3;   // workload tokens tried per connection
  int max_channels = 64;
  int max_auth_attempts = 20;
  // Against signed-in clients that misbehave on purpose; past any of these the peer is
  // disconnected with a limit.exceeded event (README, Security).
  size_t max_channel_buffer = 4u << 20;  // bytes a peer sent past its window that libssh holds
  int max_pending_requests = 32;         // channel requests waiting for the target, per channel
  int max_env = 64;                      // env requests per channel
  size_t max_env_size = 8192;            // bytes of one env request (name and value)
  long max_terminal_cells = 250000;      // columns x rows, over all terminals of a connection
  int max_request_rate = 20;             // requests per second, sustained (bursts of 10 times)
  int workers = 0;                       // threads per worker process; 0 = CPUs / processes
  int worker_processes = 2;
  size_t max_line = 8192;
  size_t session_backlog = 1u << 20;  // recording bytes a session may have queued before pausing
  // Benchmarks only, and only from the command line (never the environment or a config file):
  // relay without recording to measure what recording costs.
  bool recording_enabled = true;
  bool demo = false;  // generate host and recording keys in memory
  std::string log_level = "info";
  bool print_user_ca = false;
  bool print_recording_key = false;
  // castgate ssh-config: print what users paste, then exit (targets and host keys filled in
  // from --targets and --host-key).
  bool print_ssh_config = false;
  SshConfigRequest ssh_config;
  SshConfigPart ssh_config_part = SshConfigPart::kScript;
};

// Parses argv/environment/config file. Returns std::nullopt after printing --help or --version.
// Throws std::runtime_error with a user-facing message for invalid settings.
std::optional<GatewayConfig> parse_config(int argc, const char* const argv[]);

ListenSpec parse_listen(const std::string& text);

}  // namespace castgate
