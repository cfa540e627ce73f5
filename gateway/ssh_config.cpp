#include "gateway/ssh_config.h"

#include <stdexcept>

namespace castgate {

namespace {

// Host names and patterns go into ssh_config, known_hosts and a shell here-document: letters,
// digits and the characters of names, addresses and patterns only.
bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > 253 || s[0] == '-' || s[0] == '!') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '*' || c == '?' || c == ':';
    if (!ok) return false;
  }
  return true;
}

bool safe_key(const std::string& s) {
  auto sp = s.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == sp) continue;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == '-' || c == '@' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string gateway_known_hosts_name(const SshConfigRequest& r) {
  if (r.gateway_port == 22) return r.gateway_host;
  return "[" + r.gateway_host + "]:" + std::to_string(r.gateway_port);
}

std::string joined_targets(const SshConfigRequest& r, const char* sep) {
  std::string out;
  for (const auto& n : r.target_names) out += (out.empty() ? "" : sep) + n;
  for (const auto& p : r.patterns) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string known_hosts_options(const SshConfigRequest& r) {
  return "  UserKnownHostsFile " + r.dir + "/known_hosts\n  StrictHostKeyChecking yes\n";
}

// Only the connection to the gateway is shared: it carries the sign-in, and every later ssh,
// scp or git reaches a target through it without signing in again. A master on the target names
// would also work, but OpenSSH then sends a ProxyJump's error messages (a wrong gateway host key)
// to /dev/null.
std::string control_options(const SshConfigRequest& r) {
  return "  ControlMaster auto\n  ControlPath " + r.dir + "/cm-%C\n  ControlPersist " +
         r.control_persist + "\n";
}

bool safe_dir(const std::string& d) {
  if (d.empty() || d.size() > 60 || (d[0] != '/' && d.rfind("~/", 0) != 0)) return false;
  for (char c : d) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '.' || c == '-' || c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void validate(const SshConfigRequest& r) {
  if (!safe_name(r.gateway_host) || r.gateway_host.find(':') != std::string::npos ||
      r.gateway_host.find_first_of("*?") != std::string::npos)
    throw std::runtime_error("--gateway: not a host name or IPv4 address: " + r.gateway_host);
  if (r.gateway_port < 1 || r.gateway_port > 65535)
    throw std::runtime_error("--gateway: the port must be 1..65535");
  for (const auto& n : r.target_names)
    if (!safe_name(n) || n.find_first_of("*?:") != std::string::npos)
      throw std::runtime_error("target name unusable in ssh_config: " + n);
  for (const auto& p : r.patterns)
    if (!safe_name(p) || p.find(':') != std::string::npos)
      throw std::runtime_error("--domain: not a host pattern: " + p);
  if (r.target_names.empty() && r.patterns.empty())
    throw std::runtime_error("no targets configured and no --domain given: nothing to route");
  // Control sockets live there: their path (plus "/cm-" and 40 characters of %C) must stay
  // under the 104 bytes of a Unix socket's name.
  if (!safe_dir(r.dir))
    throw std::runtime_error("--dir: an absolute or ~/ path of at most 60 plain characters");
  if (r.host_keys.empty()) throw std::runtime_error("no host key (--host-key)");
  for (const auto& k : r.host_keys)
    if (!safe_key(k)) throw std::runtime_error("unusable public host key line");
  for (char c : r.control_persist)
    if (!((c >= '0' && c <= '9') || c == 's' || c == 'm' || c == 'h'))
      throw std::runtime_error("--control-persist: a duration such as 10m");
}

std::string ssh_config_block(const SshConfigRequest& r) {
  validate(r);
  std::string out = "# castgate gateway " + gateway_known_hosts_name(r) +
                    " (castgate ssh-config). Targets are reached through it and recorded.\n";
  out += "Host " + r.gateway_host + "\n  HostName " + r.gateway_host + "\n  Port " +
         std::to_string(r.gateway_port) + "\n" + known_hosts_options(r) + control_options(r);
  // The gateway's own name is excluded: a pattern such as *.corp must not send it through itself.
  out += "Host " + joined_targets(r, " ") + " !" + r.gateway_host + "\n  ProxyJump " +
         r.gateway_host + "\n" + known_hosts_options(r);
  return out;
}

std::string ssh_known_hosts(const SshConfigRequest& r) {
  validate(r);
  std::string out;
  // The gateway answers the inner connection of every target with its own host key.
  std::string names = gateway_known_hosts_name(r) + "," + joined_targets(r, ",");
  for (const auto& k : r.host_keys) out += names + " " + k + "\n";
  return out;
}

std::string ssh_config_script(const SshConfigRequest& r) {
  std::string block = ssh_config_block(r), known = ssh_known_hosts(r);
  std::string out;
  const std::string& d = r.dir;
  out += "# Paste into a shell (sh, bash, zsh). Writes " + d + "/{config,known_hosts} and\n";
  out += "# includes that config from ~/.ssh/config once. Then: ssh <login>@<target>\n";
  out += "mkdir -p ~/.ssh " + d + " && chmod 700 ~/.ssh " + d + "\n";
  out += "cat > " + d + "/known_hosts <<'CASTGATE_END'\n" + known + "CASTGATE_END\n";
  out += "cat > " + d + "/config <<'CASTGATE_END'\n" + block + "CASTGATE_END\n";
  // Include must come before any Host stanza of the user's own file to apply everywhere.
  std::string include = "Include " + d + "/config";
  out +=
      "touch ~/.ssh/config && chmod 600 ~/.ssh/config\n"
      "grep -qx '" +
      include + "' ~/.ssh/config || { printf '%s\\n\\n' '" + include +
      "' | cat - ~/.ssh/config > ~/.ssh/config.castgate && "
      "mv ~/.ssh/config.castgate ~/.ssh/config && chmod 600 ~/.ssh/config; }\n";
  return out;
}

}  // namespace castgate
