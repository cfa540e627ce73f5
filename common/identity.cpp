#include "common/identity.h"

#include <algorithm>

namespace castgate {

std::string_view to_string(IdentityKind kind) {
  return kind == IdentityKind::kWorkload ? "workload" : "human";
}

bool Identity::in_group(std::string_view group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::string Identity::describe() const {
  std::string out = name.empty() ? subject : name;
  if (!email.empty() && email != out) out += " <" + email + ">";
  if (!groups.empty()) {
    out += " (groups: ";
    for (size_t i = 0; i < groups.size(); ++i) {
      if (i) out += ", ";
      out += groups[i];
    }
    out += ")";
  }
  return out;
}

}  // namespace castgate
