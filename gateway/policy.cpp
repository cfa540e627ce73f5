#include "gateway/policy.h"

#include <stdexcept>

#include "common/json_config.h"
#include "common/text.h"

namespace castgate {

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
                  "port_forwarding", "pty", "mfa", "max_session_length"});
    Rule rule;
    rule.name = c.str("name", "rule-" + std::to_string(index++));
    rule.who = IdentitySelector::read(c);
    rule.targets = c.list("targets");
    rule.logins = c.list("logins");
    if (rule.who.names_nobody())
      throw std::runtime_error(c.where() + ": name at least one of identities, emails, groups");
    if (rule.targets.empty()) throw std::runtime_error(c.where() + ": targets is required");
    if (rule.logins.empty()) throw std::runtime_error(c.where() + ": logins is required");
    rule.port_forwarding = c.boolean("port_forwarding", rule.port_forwarding);
    rule.pty = c.boolean("pty", rule.pty);
    rule.mfa = c.boolean("mfa", rule.mfa);
    rule.max_session = c.duration("max_session_length", rule.max_session);
    if (rule.max_session.count() > 0 && rule.max_session < std::chrono::seconds(2))
      throw std::runtime_error(c.where() + ": max_session_length must be at least 2s");
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

PolicyDecision Policy::evaluate(const Identity& identity, std::string_view target,
                                std::string_view login) const {
  PolicyDecision d;
  bool subject_seen = false, target_seen = false;
  std::string mfa_rule;  // a rule that would have granted access after a multi-factor sign-in
  bool unlimited = false;
  for (const auto& rule : rules_) {
    if (!rule.who.matches(identity)) continue;
    subject_seen = true;
    if (!any_glob(rule.targets, target)) continue;
    target_seen = true;
    if (!any_glob(rule.logins, login)) continue;
    if (rule.mfa && !identity.mfa) {
      if (mfa_rule.empty()) mfa_rule = rule.name;
      continue;
    }
    d.allowed = true;
    if (rule.max_session.count() == 0) {
      unlimited = true;
    } else if (rule.max_session > d.max_session) {
      d.max_session = rule.max_session;
      d.max_session_rule = rule.name;
    }
    d.port_forwarding = d.port_forwarding || rule.port_forwarding;
    d.pty = d.pty || rule.pty;
    d.rules.push_back(rule.name);
  }
  if (unlimited) {
    d.max_session = std::chrono::seconds(0);
    d.max_session_rule.clear();
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
