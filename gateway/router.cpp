#include "gateway/router.h"

#include <algorithm>

#include "common/text.h"

namespace castgate {

void split_user(const std::string& ssh_user, std::string& login, std::string& target) {
  size_t at = ssh_user.find('@');
  if (at == std::string::npos) {
    login = ssh_user;
    target.clear();
  } else {
    login = ssh_user.substr(0, at);
    target = ssh_user.substr(at + 1);
  }
}

Route Router::route(const std::string& ssh_user, const std::string& listener_target,
                    const Identity& identity,
                    const std::vector<std::string>& certificate_principals) const {
  Route r;
  std::string requested_target;
  split_user(ssh_user, r.login, requested_target);
  const std::string& login = r.login;
  auto deny = [&](const std::string& code, const std::string& message) {
    r.denial = RouteDenial{code, message, requested_target};
    return r;
  };
  if (!listener_target.empty()) {
    if (!requested_target.empty() && requested_target != listener_target) {
      r.target_name = listener_target;
      return deny("listener_bound", "this address serves only " + listener_target + ", not " +
                                        printable(requested_target, 64));
    }
    requested_target = listener_target;
  }
  r.target_name = requested_target;
  if (login.empty() || login.size() > 64)
    return deny("bad_login", "the login name is missing or too long");
  if (requested_target.empty()) {
    std::string allowed;
    for (const auto& name : targets_.names())
      if (policy_.evaluate(identity, name, login).allowed)
        allowed += (allowed.empty() ? "" : ", ") + name;
    return deny("no_target", "choose a target with ssh " + login +
                                 "@TARGET@<gateway>; targets you may reach as " + login + ": " +
                                 (allowed.empty() ? "none" : allowed));
  }
  if (!certificate_principals.empty() &&
      std::find(certificate_principals.begin(), certificate_principals.end(), login) ==
          certificate_principals.end()) {
    std::string allowed;
    for (auto& p : certificate_principals) allowed += (allowed.empty() ? "" : ", ") + p;
    return deny("certificate_principal",
                "the certificate allows the logins " + allowed + ", not " + printable(login, 64));
  }
  r.target = targets_.find(requested_target);
  if (!r.target)
    return deny("unknown_target", "the target " + printable(requested_target, 64) +
                                      " is not configured on this gateway");
  r.decision = policy_.evaluate(identity, r.target->name, login);
  if (!r.decision.allowed)
    return deny(r.decision.mfa_missing     ? "mfa_required"
                : r.decision.outside_hours ? "outside_hours"
                                           : "policy",
                identity.describe() + " may not log in to " + requested_target + " as " + login +
                    ": " + r.decision.reason);
  if (auto locks = locks_.get()) {
    if (const auto* lock = locks->match(identity, r.target->name))
      return deny("locked", lock_message(*lock));
  }
  return r;
}

}  // namespace castgate
