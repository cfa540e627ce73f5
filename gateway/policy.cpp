#include "gateway/policy.h"

#include <stdexcept>

#include "common/json_config.h"
#include "common/text.h"

namespace castgate {
namespace {

bool any_match(const std::vector<std::string>& patterns, std::string_view value) {
  if (value.empty()) return false;
  for (const auto& p : patterns)
    if (glob_match(p, value)) return true;
  return false;
}

}  // namespace

Policy Policy::parse(std::string_view json_text, const std::string& origin) {
  nlohmann::json doc = parse_config_json(json_text, origin);
  if (!doc.is_object() || !doc.contains("rules"))
    throw std::runtime_error(origin + ": expected {\"rules\": [...]}");
  ConfigObject top(doc, origin);
  top.allow_only({"rules"});
  Policy policy;
  size_t index = 0;
  for (auto& r : top.array("rules")) {
    ConfigObject c(r, origin + ": rules[" + std::to_string(index) + "]");
    c.allow_only({"name", "identities", "emails", "groups", "kinds", "targets", "logins",
                  "port_forwarding", "pty", "mfa"});
    Rule rule;
    rule.name = c.str("name", "rule-" + std::to_string(index++));
    rule.identities = c.list("identities");
    rule.emails = c.list("emails");
    rule.groups = c.list("groups");
    rule.kinds = c.list("kinds");
    rule.targets = c.list("targets");
    rule.logins = c.list("logins");
    for (auto& k : rule.kinds)
      if (k != "human" && k != "workload")
        throw std::runtime_error(c.where() + ": kinds may only hold \"human\" and \"workload\"");
    if (rule.identities.empty() && rule.emails.empty() && rule.groups.empty())
      throw std::runtime_error(c.where() + ": name at least one of identities, emails, groups");
    if (rule.targets.empty()) throw std::runtime_error(c.where() + ": targets is required");
    if (rule.logins.empty()) throw std::runtime_error(c.where() + ": logins is required");
    rule.port_forwarding = c.boolean("port_forwarding", rule.port_forwarding);
    rule.pty = c.boolean("pty", rule.pty);
    rule.mfa = c.boolean("mfa", rule.mfa);
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

bool Policy::subject_matches(const Rule& rule, const Identity& id) {
  if (!rule.kinds.empty() && !any_match(rule.kinds, to_string(id.kind))) return false;
  // Never the display name: an identity provider's preferred_username can be chosen by the user.
  if (any_match(rule.identities, id.subject) || any_match(rule.identities, id.assigned_name))
    return true;
  if (id.email_verified && any_match(rule.emails, id.email)) return true;
  for (const auto& g : id.groups)
    if (any_match(rule.groups, g)) return true;
  return false;
}

PolicyDecision Policy::evaluate(const Identity& identity, std::string_view target,
                                std::string_view login) const {
  PolicyDecision d;
  bool subject_seen = false, target_seen = false;
  std::string mfa_rule;  // a rule that would have granted access after a multi-factor sign-in
  for (const auto& rule : rules_) {
    if (!subject_matches(rule, identity)) continue;
    subject_seen = true;
    if (!any_match(rule.targets, target)) continue;
    target_seen = true;
    if (!any_match(rule.logins, login)) continue;
    if (rule.mfa && !identity.mfa) {
      if (mfa_rule.empty()) mfa_rule = rule.name;
      continue;
    }
    d.allowed = true;
    d.port_forwarding = d.port_forwarding || rule.port_forwarding;
    d.pty = d.pty || rule.pty;
    d.rules.push_back(rule.name);
  }
  if (!d.allowed) {
    if (!mfa_rule.empty()) {
      d.mfa_missing = true;
      d.reason = "policy rule " + mfa_rule +
                 " requires a multi-factor sign-in, and this sign-in did not use one (" +
                 identity.describe_factors() + "): sign in again with a second factor";
    } else if (!subject_seen) {
      d.reason = "no policy rule grants this identity any access";
    } else if (!target_seen) {
      d.reason = "no policy rule grants access to target " + std::string(target);
    } else {
      d.reason = "no policy rule allows login " + std::string(login) + " on " + std::string(target);
    }
  }
  return d;
}

}  // namespace castgate
