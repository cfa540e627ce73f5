#include "gateway/locks.h"

#include <stdexcept>

#include "common/json_config.h"

namespace castgate {

Locks Locks::parse(std::string_view json_text, const std::string& origin) {
  nlohmann::json doc = parse_config_json(json_text, origin);
  if (!doc.is_object() || !doc.contains("locks"))
    throw std::runtime_error(origin + ": expected {\"locks\": [...]}");
  ConfigObject top(doc, origin);
  top.allow_only({"locks"});
  Locks locks;
  size_t index = 0;
  for (auto& l : top.array("locks")) {
    ConfigObject c(l, origin + ": locks[" + std::to_string(index++) + "]");
    c.allow_only({"identities", "emails", "groups", "kinds", "targets", "reason", "everyone"});
    Lock lock;
    lock.who = IdentitySelector::read(c);
    lock.targets = c.list("targets");
    lock.reason = c.str("reason");
    constexpr size_t kMaxReason = 200;
    if (lock.reason.empty() || lock.reason.size() > kMaxReason)
      throw std::runtime_error(c.where() +
                               ": reason is required (at most 200 characters): it "
                               "tells the people locked out why");
    bool everyone = c.boolean("everyone", false);
    if (lock.who.names_nobody() && lock.who.kinds.empty() && lock.targets.empty() && !everyone)
      throw std::runtime_error(c.where() +
                               ": names no identity and no target: it would lock everyone "
                               "out (say \"everyone\": true if that is meant)");
    locks.locks_.push_back(std::move(lock));
  }
  return locks;
}

const Locks::Lock* Locks::match(const Identity& identity, std::string_view target) const {
  for (const auto& lock : locks_) {
    bool who = lock.who.names_nobody()
                   ? lock.who.kinds.empty() || any_glob(lock.who.kinds, to_string(identity.kind))
                   : lock.who.matches_any_spelling(identity);
    if (!who) continue;
    if (!lock.targets.empty() && !any_glob(lock.targets, target)) continue;
    return &lock;
  }
  return nullptr;
}

}  // namespace castgate
