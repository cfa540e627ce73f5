#include "gateway/policy.h"

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

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
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(origin + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("rules") || !doc["rules"].is_array())
    throw std::runtime_error(origin + ": expected {\"rules\": [...]}");
  for (auto& [k, v] : doc.items())
    if (k != "rules") throw std::runtime_error(origin + ": unknown setting \"" + k + "\"");
  Policy policy;
  size_t index = 0;
  static const std::set<std::string> kKeys = {"name",   "identities",      "emails",
                                              "groups", "kinds",           "targets",
                                              "logins", "port_forwarding", "pty"};
  for (auto& r : doc["rules"]) {
    std::string where = origin + ": rules[" + std::to_string(index++) + "]";
    if (!r.is_object()) throw std::runtime_error(where + " must be an object");
    for (auto& [k, v] : r.items())
      if (!kKeys.count(k)) throw std::runtime_error(where + ": unknown setting \"" + k + "\"");
    Rule rule;
    rule.name = r.value("name", "rule-" + std::to_string(index - 1));
    auto list = [&](const char* key, std::vector<std::string>& out) {
      if (!r.contains(key)) return;
      if (!r[key].is_array()) throw std::runtime_error(where + ": " + key + " must be a list");
      for (auto& s : r[key]) {
        if (!s.is_string()) throw std::runtime_error(where + ": " + key + " must hold strings");
        out.push_back(s.get<std::string>());
      }
    };
    list("identities", rule.identities);
    list("emails", rule.emails);
    list("groups", rule.groups);
    list("kinds", rule.kinds);
    list("targets", rule.targets);
    list("logins", rule.logins);
    for (auto& k : rule.kinds)
      if (k != "human" && k != "workload")
        throw std::runtime_error(where + ": kinds may only hold \"human\" and \"workload\"");
    if (rule.identities.empty() && rule.emails.empty() && rule.groups.empty())
      throw std::runtime_error(where + ": name at least one of identities, emails, groups");
    if (rule.targets.empty()) throw std::runtime_error(where + ": targets is required");
    if (rule.logins.empty()) throw std::runtime_error(where + ": logins is required");
    if (r.contains("port_forwarding")) {
      if (!r["port_forwarding"].is_boolean())
        throw std::runtime_error(where + ": port_forwarding must be true or false");
      rule.port_forwarding = r["port_forwarding"].get<bool>();
    }
    if (r.contains("pty")) {
      if (!r["pty"].is_boolean()) throw std::runtime_error(where + ": pty must be true or false");
      rule.pty = r["pty"].get<bool>();
    }
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

bool Policy::subject_matches(const Rule& rule, const Identity& id) {
  if (!rule.kinds.empty() && !any_match(rule.kinds, to_string(id.kind))) return false;
  if (any_match(rule.identities, id.subject) || any_match(rule.identities, id.name)) return true;
  if (any_match(rule.emails, id.email)) return true;
  for (const auto& g : id.groups)
    if (any_match(rule.groups, g)) return true;
  return false;
}

PolicyDecision Policy::evaluate(const Identity& identity, std::string_view target,
                                std::string_view login) const {
  PolicyDecision d;
  bool subject_seen = false, target_seen = false;
  for (const auto& rule : rules_) {
    if (!subject_matches(rule, identity)) continue;
    subject_seen = true;
    if (!any_match(rule.targets, target)) continue;
    target_seen = true;
    if (!any_match(rule.logins, login)) continue;
    d.allowed = true;
    d.port_forwarding = d.port_forwarding || rule.port_forwarding;
    d.pty = d.pty || rule.pty;
    d.rules.push_back(rule.name);
  }
  if (!d.allowed) {
    if (!subject_seen) {
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
