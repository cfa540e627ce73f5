// Whom a policy rule or a lock names: identities (the issuer-qualified subject or the name an
// administrator assigned, never a display name), emails (only one its issuer verified), groups,
// as glob patterns, and kinds ("human", "workload"; none: any).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"
#include "common/json_config.h"

namespace castgate {

// True when `value` is non-empty and matches one of `patterns` (glob_match).
bool any_glob(const std::vector<std::string>& patterns, std::string_view value);

struct IdentitySelector {
  std::vector<std::string> identities, emails, groups, kinds;

  // Reads "identities", "emails", "groups" and "kinds" of `c`; throws on a kind other than
  // human or workload.
  static IdentitySelector read(const ConfigObject& c);
  // Names nobody (no identities, emails or groups).
  bool names_nobody() const { return identities.empty() && emails.empty() && groups.empty(); }
  bool matches(const Identity& identity) const;
  // For what only takes away (locks): case does not matter, and an email counts whether or not
  // its issuer verified it. Never the display name.
  bool matches_any_spelling(const Identity& identity) const;
};

}  // namespace castgate
