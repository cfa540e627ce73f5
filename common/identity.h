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

// A name an administrator may give an identity: letters, digits, '.', '_', '@', '-' (at most 128).
// No ':': that qualifies the subjects of other issuers ("oidc:", "cert:", "<issuer name>:").
bool is_admin_name(std::string_view name);

// Policy matches an identity only by what cannot be confused: its issuer-qualified `subject`, or
// the `assigned_name` an administrator gave it. Never by its display name (an identity
// provider's preferred_username, which users can often change) and never by an email the
// issuer did not verify.
struct Identity {
  // Stable, unique and qualified by who issued it: a registered key's identity name ("alice"),
  // "oidc:<sub>" (Entra: "oidc:<tid>:<oid>"), "cert:<ca name>:<key id>", or for a workload token
  // "<issuer name>:<sub>". Administrators' names hold no ':', so these cannot collide.
  std::string subject;
  // The name an administrator assigned: the identity name of a registered key, or the identity
  // a workload-issuer rule maps a token to. Empty for people signing in with OIDC and for
  // certificates (their CA names them, in `subject`).
  std::string assigned_name;
  std::string name;  // display name only (identity name, preferred_username, key id)
  std::string email;
  bool email_verified = false;  // the issuer vouches for the email (policy "emails" needs it)
  std::vector<std::string> groups;
  std::string issuer;       // who vouched for it: "castgate:identities", an OIDC issuer URL, a CA
  std::string auth_method;  // "publickey", "oidc-device", "certificate", "workload-jwt"
  IdentityKind kind = IdentityKind::kHuman;
  // The sign-in used several factors, as the identity provider's token says (its amr or acr
  // claim, read as the provider's preset spells them), or as the operator says the provider
  // enforces for castgate. Never true for keys, certificates or workloads.
  bool mfa = false;
  std::vector<std::string> amr;  // the token's authentication methods, as it lists them
  std::string acr;               // the token's authentication context class

  // "amr: pwd, otp; acr: urn:..." or "a key" etc.: what the sign-in is known to have used.
  std::string describe_factors() const;

  bool in_group(std::string_view group) const;
  // One line for messages to the user and diagnostics: "alice <alice@example.com> (groups: a, b)".
  std::string describe() const;
};

}  // namespace castgate
