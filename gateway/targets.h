// The servers castgate may connect to. Users can only ever reach a target listed here; a name a
// user types that is not configured is refused without any connection attempt.
//
// JSON: {"targets": [{"name": "db1.int", "host": "10.0.0.5", "port": 22,
//                     "host_key_names": ["db1"], "static_key": "/etc/castgate/db1.key",
//                     "env": ["LANG", "LC_*", "TERM"], "certificate_validity": "5m"}]}
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castgate {

// Variables that make the target run code the user chose (a loader, a shell or an interpreter
// reads them at start-up) or change what a command means. A target may restrict what runs there
// (ForceCommand, a restricted shell, command= in authorized_keys); these would turn such a
// restriction into arbitrary execution, so no "env" pattern passes them, not even "*".
// Globs, as in "env"; kept in one place, documented in targets.cpp.
extern const std::vector<std::string_view> kEnvNeverPassed;

struct Target {
  std::string name;  // what users type and what policy names
  std::string host;  // where to connect (address or DNS name)
  int port = 22;
  std::vector<std::string> host_key_names;  // known_hosts names to accept besides name/host
  std::string static_key_path;              // use this private key instead of a certificate
  std::vector<std::string> env_allow;       // environment variables passed through (globs)
  std::optional<std::chrono::seconds> certificate_validity;

  // Names under which the target's key may be pinned in known_hosts.
  std::vector<std::string> known_hosts_names() const;
  // A plain variable name ([A-Za-z_][A-Za-z0-9_]*) that an "env" pattern matches and
  // kEnvNeverPassed does not.
  bool env_allowed(std::string_view name) const;
  // The entries of kEnvNeverPassed that some "env" pattern would match (for the start-up warning).
  std::vector<std::string_view> env_patterns_matching_never_passed() const;
};

class Targets {
 public:
  // Throws std::runtime_error with the file name and the problem.
  static Targets parse(std::string_view json_text, const std::string& origin);
  const Target* find(std::string_view name) const;
  // The target a ProxyJump channel (direct-tcpip) names by its SSH address: its name on port 22
  // or on its own port, or its host and port. Null for anything else.
  const Target* find_ssh_address(std::string_view host, int port) const;
  std::vector<std::string> names() const;
  size_t size() const { return by_name_.size(); }
  void add(Target t);

 private:
  std::map<std::string, Target, std::less<>> by_name_;
};

}  // namespace castgate
