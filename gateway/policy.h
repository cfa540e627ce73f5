// Who may reach which target as which login, and whether they may forward ports.
//
// JSON: {"rules": [{"name": "ops-db", "groups": ["ops"], "identities": ["alice"],
//                   "emails": ["bob@example.com"], "kinds": ["human"],
//                   "targets": ["db*.int"], "logins": ["ubuntu"],
//                   "port_forwarding": false, "pty": true, "mfa": true,
//                   "max_session_length": "8h"}]}
// A rule applies when the identity matches one of its identities/emails/groups (glob patterns),
// its kind is listed (default: any), and both the target and the login match. Access is granted
// if any rule applies; anything else is refused. "identities" match the issuer-qualified subject
// ("alice" for a registered key, "oidc:<sub>", "cert:<ca>:<key id>", "<issuer>:<sub>") or the
// name an administrator assigned (a registered key's, a workload rule's), never a display name;
// "emails" match only an email its issuer verified (see common/identity.h). A rule with
// "mfa": true grants access only to an identity whose sign-in used several factors
// (Identity::mfa: an OIDC sign-in whose token says so; never a key, certificate or workload).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"
#include "gateway/identity_selector.h"

namespace castgate {

struct PolicyDecision {
  bool allowed = false;
  bool port_forwarding = false;
  bool pty = false;
  std::vector<std::string> rules;  // names of the rules that granted access
  std::string reason;              // why it was refused, for the user and the audit event
  // Refused, and a rule would have granted it after a multi-factor sign-in.
  bool mfa_missing = false;
  // The longest session the granting rules allow (rules are alternatives: the most generous
  // applies); 0: no limit. `max_session_rule` names the rule it comes from.
  std::chrono::seconds max_session{0};
  std::string max_session_rule;
};

class Policy {
 public:
  static Policy parse(std::string_view json_text, const std::string& origin);
  PolicyDecision evaluate(const Identity& identity, std::string_view target,
                          std::string_view login) const;
  size_t size() const { return rules_.size(); }

 private:
  struct Rule {
    std::string name;
    IdentitySelector who;
    std::vector<std::string> targets, logins;
    bool port_forwarding = false;
    bool pty = true;
    bool mfa = false;                     // grants only to a multi-factor sign-in
    std::chrono::seconds max_session{0};  // 0: no limit
  };
  std::vector<Rule> rules_;
};

}  // namespace castgate
