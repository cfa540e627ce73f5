// The person or workload behind a session. Every way of signing in (public key, OIDC device
// flow, workload token, user certificate) produces one of these, and policy and recording only
// ever look at this type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace castgate {

enum class IdentityKind { kHuman, kWorkload };

std::string_view to_string(IdentityKind kind);

struct Identity {
  std::string subject;  // stable, unique id (identity name, OIDC tid:oid or sub, cert key id)
  std::string name;     // display name (identity name, preferred_username)
  std::string email;
  std::vector<std::string> groups;
  std::string issuer;       // who vouched for it: "castgate:identities", an OIDC issuer URL, a CA
  std::string auth_method;  // "publickey", "oidc-device", "certificate", "workload-jwt"
  IdentityKind kind = IdentityKind::kHuman;

  bool in_group(std::string_view group) const;
  // One line for messages to the user and diagnostics: "alice <alice@example.com> (groups: a, b)".
  std::string describe() const;
};

}  // namespace castgate
