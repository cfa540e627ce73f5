#include "gateway/identity_selector.h"

#include <cctype>
#include <stdexcept>

#include "common/text.h"

namespace castgate {

bool any_glob(const std::vector<std::string>& patterns, std::string_view value) {
  if (value.empty()) return false;
  for (const auto& p : patterns)
    if (glob_match(p, value)) return true;
  return false;
}

IdentitySelector IdentitySelector::read(const ConfigObject& c) {
  IdentitySelector s;
  s.identities = c.list("identities");
  s.emails = c.list("emails");
  s.groups = c.list("groups");
  s.kinds = c.list("kinds");
  for (auto& k : s.kinds)
    if (k != "human" && k != "workload")
      throw std::runtime_error(c.where() + ": kinds may only hold \"human\" and \"workload\"");
  return s;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool any_glob_folded(const std::vector<std::string>& patterns, std::string_view value) {
  if (value.empty()) return false;
  std::string v = lower(value);
  for (const auto& p : patterns)
    if (glob_match(lower(p), v)) return true;
  return false;
}

// The one matcher: `loose` (locks) folds letter case and takes unverified emails too.
bool select(const IdentitySelector& s, const Identity& id, bool loose) {
  auto any = loose ? any_glob_folded : any_glob;
  if (!s.kinds.empty() && !any_glob(s.kinds, to_string(id.kind))) return false;
  // Never the display name: an identity provider's preferred_username can be chosen by the user.
  if (any(s.identities, id.subject) || any(s.identities, id.assigned_name)) return true;
  if ((loose || id.email_verified) && any(s.emails, id.email)) return true;
  for (const auto& g : id.groups)
    if (any(s.groups, g)) return true;
  return false;
}

}  // namespace

bool IdentitySelector::matches(const Identity& id) const {
  return select(*this, id, false);
}

bool IdentitySelector::matches_any_spelling(const Identity& id) const {
  return select(*this, id, true);
}

}  // namespace castgate
