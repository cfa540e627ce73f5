// `castgate ssh-config`: what an engineer pastes once so that `ssh db1.int`, scp, sftp, rsync and
// git reach the targets through the gateway unchanged. The ssh_config block sends every target
// name through ProxyJump (castgate terminates and records the inner connection), keeps one
// signed-in connection to the gateway open for later commands (ControlMaster/ControlPersist), and
// pins the gateway's host key for the gateway's name and every target name (castgate answers the
// inner connections with its own host key), so users see no prompt and a wrong gateway is refused.
#pragma once

#include <string>
#include <vector>

namespace castgate {

struct SshConfigRequest {
  std::string gateway_host;  // the name users reach the gateway by (DNS name or address)
  int gateway_port = 22;
  std::vector<std::string> target_names;  // configured targets
  std::vector<std::string> patterns;      // extra Host patterns, such as "*.int"
  std::vector<std::string> host_keys;     // the gateway's public host keys: "TYPE BASE64"
  std::string control_persist = "10m";
  std::string dir = "~/.ssh/castgate";  // where the config, known_hosts and control sockets go
};

enum class SshConfigPart { kScript, kConfig, kKnownHosts };

// The ssh_config block (Host stanzas), for ~/.ssh/castgate/config.
std::string ssh_config_block(const SshConfigRequest& request);
// The known_hosts lines, for ~/.ssh/castgate/known_hosts.
std::string ssh_known_hosts(const SshConfigRequest& request);
// A POSIX shell snippet that writes both files and includes the block from ~/.ssh/config once.
std::string ssh_config_script(const SshConfigRequest& request);

// Checks what a deployment asks to print (names and patterns that would break the block, such as
// whitespace or quotes); throws std::runtime_error with the offending value.
void validate(const SshConfigRequest& request);

}  // namespace castgate
