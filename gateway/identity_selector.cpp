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

bool IdentitySelector::matches(const Identity& id) const {
  if (!kinds.empty() && !any_glob(kinds, to_string(id.kind))) return false;
  // Never the display name: an identity provider's preferred_username can be chosen by the user.
  if (any_glob(identities, id.subject) || any_glob(identities, id.assigned_name)) return true;
  if (id.email_verified && any_glob(emails, id.email)) return true;
  for (const auto& g : id.groups)
    if (any_glob(groups, g)) return true;
  return false;
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
}  // namespace

bool IdentitySelector::matches_any_spelling(const Identity& id) const {
  if (!kinds.empty() && !any_glob(kinds, to_string(id.kind))) return false;
  if (any_glob_folded(identities, id.subject) || any_glob_folded(identities, id.assigned_name))
    return true;
  if (any_glob_folded(emails, id.email)) return true;
  for (const auto& g : id.groups)
    if (any_glob_folded(groups, g)) return true;
  return false;
}

}  // namespace castgate
