// Where a signed-in connection may go: the SSH user name ("ubuntu@db1.int") read against the
// listener it came in on, the configured targets, the logins a certificate allows, the policy
// and the locks. Yields a route, or a denial for the session to record; it records nothing and
// connects nowhere itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/identity.h"
#include "gateway/lock_watcher.h"
#include "gateway/policy.h"
#include "gateway/targets.h"

namespace castgate {

// Splits the SSH user name into login and target ("ubuntu@db1.int" -> ubuntu, db1.int).
void split_user(const std::string& ssh_user, std::string& login, std::string& target);

struct RouteDenial {
  std::string code;              // castgate.denial: "no_target", "policy", "locked", ...
  std::string message;           // for the user and the policy.denied event
  std::string requested_target;  // the target asked for, as far as the denial got
};

struct Route {
  std::string login;
  std::string target_name;  // the target the connection names (the listener's, if bound to one)
  // The configured target, once it was found; set even when the policy or a lock then denies
  // it (the recording names it).
  const Target* target = nullptr;
  PolicyDecision decision;  // evaluated once the target was found
  std::optional<RouteDenial> denial;
};

class Router {
 public:
  Router(const Targets& targets, const Policy& policy, const LockState& locks)
      : targets_(targets), policy_(policy), locks_(locks) {}

  // `listener_target`: the one target the listener serves, or empty. `certificate_principals`:
  // the logins the certificate the identity signed in with allows (empty: no certificate, or
  // one that names none, binds the login).
  Route route(const std::string& ssh_user, const std::string& listener_target,
              const Identity& identity,
              const std::vector<std::string>& certificate_principals) const;

 private:
  const Targets& targets_;
  const Policy& policy_;
  const LockState& locks_;
};

}  // namespace castgate
