#include "common/identity.h"

#include <algorithm>
#include <cctype>

namespace castgate {

std::string_view to_string(IdentityKind kind) {
  return kind == IdentityKind::kWorkload ? "workload" : "human";
}

bool is_admin_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' ||
          c == '-'))
      return false;
  return true;
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

std::string Identity::describe_factors() const {
  if (auth_method != "oidc-device") return "signed in with " + auth_method;
  if (amr.empty() && acr.empty()) return "the identity provider did not say which factors";
  std::string out;
  if (!amr.empty()) {
    out = "amr: ";
    for (size_t i = 0; i < amr.size(); ++i) out += (i ? ", " : "") + amr[i];
  }
  if (!acr.empty()) out += (out.empty() ? "acr: " : "; acr: ") + acr;
  return out;
}

}  // namespace castgate
