#include "gateway/targets.h"

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

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

void check_keys(const nlohmann::json& obj, const std::set<std::string>& allowed,
                const std::string& where) {
  for (auto& [key, value] : obj.items())
    if (!allowed.count(key)) throw std::runtime_error(where + ": unknown setting \"" + key + "\"");
}

std::vector<std::string> string_list(const nlohmann::json& v, const std::string& where) {
  if (!v.is_array()) throw std::runtime_error(where + " must be a list of strings");
  std::vector<std::string> out;
  for (auto& s : v) {
    if (!s.is_string()) throw std::runtime_error(where + " must be a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

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
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(origin + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("targets") || !doc["targets"].is_array())
    throw std::runtime_error(origin + ": expected {\"targets\": [...]}");
  check_keys(doc, {"targets"}, origin);
  Targets out;
  size_t index = 0;
  for (auto& t : doc["targets"]) {
    std::string where = origin + ": targets[" + std::to_string(index++) + "]";
    if (!t.is_object()) throw std::runtime_error(where + " must be an object");
    check_keys(
        t, {"name", "host", "port", "host_key_names", "static_key", "env", "certificate_validity"},
        where);
    Target target;
    if (!t.contains("name") || !t["name"].is_string())
      throw std::runtime_error(where + ": \"name\" is required");
    target.name = t["name"].get<std::string>();
    if (!valid_name(target.name))
      throw std::runtime_error(where + ": name may hold letters, digits, '.', '-' and '_' only");
    where = origin + ": target " + target.name;
    target.host = t.value("host", target.name);
    if (t.contains("port")) {
      if (!t["port"].is_number_integer() || t["port"].get<int>() < 1 ||
          t["port"].get<int>() > 65535)
        throw std::runtime_error(where + ": port must be 1..65535");
      target.port = t["port"].get<int>();
    }
    if (t.contains("host_key_names"))
      target.host_key_names = string_list(t["host_key_names"], where + ": host_key_names");
    if (t.contains("static_key")) target.static_key_path = t["static_key"].get<std::string>();
    target.env_allow = t.contains("env") ? string_list(t["env"], where + ": env")
                                         : std::vector<std::string>{"LANG", "LC_*", "TERM"};
    if (t.contains("certificate_validity")) {
      auto d = parse_duration(t["certificate_validity"].get<std::string>());
      if (!d || d->count() < 10)
        throw std::runtime_error(where +
                                 ": certificate_validity must be a duration of 10s or more");
      target.certificate_validity = d;
    }
    if (out.by_name_.count(target.name)) throw std::runtime_error(where + ": defined twice");
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
