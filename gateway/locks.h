// Locks: an operator's "not now" for identities, groups or targets, in a file castgate watches
// (--locks; in Kubernetes a ConfigMap). When the file changes, live sessions a lock matches are
// ended with its reason and new ones are refused, until the lock is removed. Locks override the
// policy; they never grant anything.
//
// JSON: {"locks": [{"groups": ["contractors"], "reason": "INC-4711: credential leak"},
//                  {"targets": ["db*.int"], "reason": "maintenance until 14:00"},
//                  {"identities": ["oidc:00u1abc"], "targets": ["prod*"], "reason": "..."}]}
// A lock matches a session when the identity matches its identities/emails/groups/kinds (none of
// them: any identity; letter case ignored, an email whether or not its issuer verified it: a
// lock only takes away) and the target matches its targets (none: any target). A lock naming no
// identity and no target would lock everyone out: it must say so with "everyone": true.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"
#include "gateway/identity_selector.h"

namespace castgate {

class Locks {
 public:
  struct Lock {
    IdentitySelector who;              // names nobody: any identity
    std::vector<std::string> targets;  // empty: any target
    std::string reason;                // shown to the users it locks out, and recorded
  };

  // Throws std::runtime_error naming the file and the place.
  static Locks parse(std::string_view json_text, const std::string& origin);
  // The first lock that matches a session of `identity` on `target`; null when none does.
  const Lock* match(const Identity& identity, std::string_view target) const;
  size_t size() const { return locks_.size(); }

 private:
  std::vector<Lock> locks_;
};

// What a user locked out is told, ending a session or refusing one.
inline std::string lock_message(const Locks::Lock& lock) {
  return "access locked by an administrator: " + lock.reason;
}

}  // namespace castgate
