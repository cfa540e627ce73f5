#include "gateway/targets.h"

#include <algorithm>
#include <stdexcept>

#include "common/json_config.h"
#include "common/log.h"
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

const std::vector<std::string_view> kEnvNeverPassed = {
    // The dynamic loader and libc: load a library into every program (LD_PRELOAD, LD_AUDIT,
    // LD_LIBRARY_PATH; DYLD_* on macOS), a gconv module into any program that converts
    // character sets, or change the loader's tunables (CVE-2023-4911).
    "LD_*",
    "DYLD_*",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    // Shells: files sourced or commands run at start-up or at every prompt (BASH_ENV for
    // non-interactive bash, ENV for sh), exported functions that replace commands
    // ("BASH_FUNC_name%%"), options such as xtrace whose PS4 runs command substitutions, word
    // splitting, and the search path of every command name.
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "PATH",
    // TMOUT is the idle logout a target's profile may set only as a default
    // (": ${TMOUT:=900}"); a sent value would switch it off. Nobody needs to send it: castgate
    // has its own idle timeout.
    "TMOUT",
    // Interpreters: code or modules loaded before the script a restricted command runs.
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "PERL5DB",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    // less runs these as commands on every file it opens.
    "LESSOPEN",
    "LESSCLOSE",
};

namespace {

// What a shell can name: a sent name holding '=' (or worse) could set another variable on a
// server that writes "name=value" as it comes.
bool plain_variable_name(std::string_view name) {
  if (name.empty() || name.size() > 256 || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// True if some name matches both globs ('*' any run, '?' one character, as glob_match).
// Positions (i, j) reachable in both patterns at once; a star may end, or absorb one character
// that the other pattern spells out. A character both stars make could be left out of the
// name, so a star never needs to absorb the other's star.
bool globs_overlap(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<char> reached((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> char& { return reached[i * (m + 1) + j]; };
  at(0, 0) = 1;
  for (size_t i = 0; i <= n; ++i) {
    for (size_t j = 0; j <= m; ++j) {
      if (!at(i, j)) continue;
      bool a_star = i < n && a[i] == '*', b_star = j < m && b[j] == '*';
      bool a_char = i < n && !a_star, b_char = j < m && !b_star;
      if (a_star) at(i + 1, j) = 1;
      if (b_star) at(i, j + 1) = 1;
      if (a_star && b_char) at(i, j + 1) = 1;
      if (b_star && a_char) at(i + 1, j) = 1;
      if (a_char && b_char && (a[i] == '?' || b[j] == '?' || a[i] == b[j])) at(i + 1, j + 1) = 1;
    }
  }
  return at(n, m);
}

bool never_passed(std::string_view name) {
  return std::any_of(kEnvNeverPassed.begin(), kEnvNeverPassed.end(),
                     [&](std::string_view denied) { return glob_match(denied, name); });
}

}  // namespace

bool Target::env_allowed(std::string_view var) const {
  if (!plain_variable_name(var) || never_passed(var)) return false;
  return std::any_of(env_allow.begin(), env_allow.end(),
                     [&](const std::string& p) { return glob_match(p, var); });
}

std::vector<std::string_view> Target::env_patterns_matching_never_passed() const {
  std::vector<std::string_view> out;
  for (std::string_view denied : kEnvNeverPassed)
    if (std::any_of(env_allow.begin(), env_allow.end(),
                    [&](const std::string& p) { return globs_overlap(p, denied); }))
      out.push_back(denied);
  return out;
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
    if (auto denied = target.env_patterns_matching_never_passed(); !denied.empty()) {
      std::string names;
      for (auto d : denied) names += (names.empty() ? "" : ", ") + std::string(d);
      log::warn(c.where() + ": \"env\" matches variables castgate never passes to a target (" +
                names + "); they stay refused");
    }
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

const Target* Targets::find_ssh_address(std::string_view host, int port) const {
  if (const Target* t = find(host); t && (port == 22 || port == t->port)) return t;
  for (const auto& [name, t] : by_name_)
    if (t.host == host && t.port == port) return &t;
  return nullptr;
}

std::vector<std::string> Targets::names() const {
  std::vector<std::string> out;
  for (auto& [n, t] : by_name_) out.push_back(n);
  return out;
}

}  // namespace castgate
