#include "gateway/targets.h"

#include <stdexcept>

#include "common/json_config.h"
#include "common/text.h"
#include "gateway/known_hosts.h"

namespace castgate {

std::vector<std::string> Target::known_hosts_names() const {
  std::vector<std::string> names;
  auto add = [&](const std::string& h) {
    std::string n = KnownHosts::host_name_for(h, port);
    for (auto& existing : names)
      if (existing == n) return;
    names.push_back(n);
  };
  add(name);
  add(host);
  for (const auto& h : host_key_names) add(h);
  return names;
}

bool Target::env_allowed(std::string_view var) const {
  for (const auto& p : env_allow)
    if (glob_match(p, var)) return true;
  return false;
}

namespace {

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 253) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
      return false;
  return true;
}

}  // namespace

void Targets::add(Target t) {
  std::string name = t.name;
  by_name_[name] = std::move(t);
}

Targets Targets::parse(std::string_view json_text, const std::string& origin) {
  nlohmann::json doc = parse_config_json(json_text, origin);
  if (!doc.is_object() || !doc.contains("targets"))
    throw std::runtime_error(origin + ": expected {\"targets\": [...]}");
  ConfigObject top(doc, origin);
  top.allow_only({"targets"});
  Targets out;
  size_t index = 0;
  for (auto& t : top.array("targets")) {
    ConfigObject r(t, origin + ": targets[" + std::to_string(index++) + "]");
    r.allow_only(
        {"name", "host", "port", "host_key_names", "static_key", "env", "certificate_validity"});
    Target target;
    target.name = r.str("name");
    if (target.name.empty()) throw std::runtime_error(r.where() + ": \"name\" is required");
    if (!valid_name(target.name))
      throw std::runtime_error(r.where() +
                               ": name may hold letters, digits, '.', '-' and '_' only");
    ConfigObject c(t, origin + ": target " + target.name);
    target.host = c.str("host", target.name);
    target.port = c.integer("port", target.port, 1, 65535);
    target.host_key_names = c.list("host_key_names");
    target.static_key_path = c.str("static_key");
    target.env_allow = c.list("env", {"LANG", "LC_*", "TERM"});
    if (c.has("certificate_validity")) {
      auto d = c.duration("certificate_validity", std::chrono::seconds(0));
      if (d.count() < 10)
        throw std::runtime_error(c.where() +
                                 ": certificate_validity must be a duration of 10s or more");
      target.certificate_validity = d;
    }
    if (out.by_name_.count(target.name)) throw std::runtime_error(c.where() + ": defined twice");
    out.add(std::move(target));
  }
  return out;
}

const Target* Targets::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> Targets::names() const {
  std::vector<std::string> out;
  for (auto& [n, t] : by_name_) out.push_back(n);
  return out;
}

}  // namespace castgate
