// Everything a session needs from the gateway, loaded at start-up and read-only afterwards, except
// the parts that guard themselves: the flags at the end (atomic), the key bindings, the admission
// limits and the locks (each behind its own mutex). The parent replaces its rule set on a reload
// (rule_set.h); a worker process keeps the one it was forked with.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/alert_rules.h"
#include "asciicast/checkpoint.h"
#include "asciicast/line_sink.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/output_lock.h"
#include "common/session_table.h"
#include "gateway/admission.h"
#include "gateway/config.h"
#include "gateway/identity_keys.h"
#include "gateway/key_bindings.h"
#include "gateway/known_hosts.h"
#include "gateway/lock_watcher.h"
#include "gateway/policy.h"
#include "gateway/resolver.h"
#include "gateway/rule_set.h"
#include "gateway/signer_client.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"
#include "oidc/service.h"

namespace castgate::asciicast {
class EventObserver;
}

namespace castgate {

struct GatewayContext {
  GatewayConfig config;
  Targets targets;
  Policy policy;
  IdentityKeys identities;
  KnownHosts known_hosts;
  std::unique_ptr<OutputLock> output_lock;      // shared with the signer around writes to stdout
  std::unique_ptr<SignerClient> signer;         // the signer process: user CA and recording key
  std::map<std::string, ssh::Key> static_keys;  // target name -> private key
  std::vector<ssh::Key> host_keys;
  asciicast::AlertRules alerts;
  // The files of the rule set above (rule_set.h), and its digest ("castgate.config").
  std::vector<RuleFile> rule_files;
  std::string rules_digest;
  asciicast::LineSink* sink = nullptr;
  const Clock* clock = &SystemClock::instance();
  std::optional<oidc::OidcConfig> oidc_config;  // none without --oidc-config
  KeyBindings key_bindings{*clock};             // on the clock above, as it is at construction

  // The parent's: connections not yet signed in (it accepts and admits them).
  std::unique_ptr<StartupLimiter> startups;
  // Shared by the worker processes: device sign-ins started, per source.
  std::unique_ptr<SourceRate> device_sign_ins;

  // A worker process's own (start_worker_services() in it, after the fork: they start threads).
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<oidc::OidcService> oidc;  // null without --oidc-config
  SessionTable* session_table = nullptr;    // where its chains reached stdout, for the parent
  asciicast::EventObserver* event_observer = nullptr;  // counts its sessions' events (metrics)
  LockState locks;  // the locks in force (--locks); a worker process's watcher updates them
  int worker_index = 0;
  std::string signer_chain;  // the signer process's audit chain ("signer-…")
  // The worker process's sessions start and end their chains here, for its checkpoints.
  asciicast::CheckpointLedger* checkpoints = nullptr;
  std::string session_prefix;  // the parent's, for this worker: every chain id it makes starts so
  // A connection it serves signed in or ended: the parent's startup count goes down.
  std::function<void(const std::string& ip)> startup_done = [](const std::string&) {};
  std::atomic<bool> draining{false};  // SIGTERM received
  // The parent reloaded the configuration and started this worker's successor (kRetire): no new
  // session starts here (a sign-in, a ProxyJump), the live ones go on under the rules they
  // started with.
  std::atomic<bool> retired{false};
  // What a connection is told when retirement ends it, or refuses it a new session.
  static constexpr const char* kRetiredMessage =
      "castgate's configuration was reloaded; connect again to continue under the rules in force";
};

}  // namespace castgate
