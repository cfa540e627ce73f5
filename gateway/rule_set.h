// The configuration castgate reloads without a restart (on SIGHUP, or when its files change):
// targets, policy, identities, known hosts and alert rules, with the targets' static keys. A new
// set is read and checked whole before anything is replaced; a bad one is refused (the error
// names the file and the place) and the one in force stays. The lock file is not here: worker
// processes watch it themselves (lock_watcher.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "asciicast/alert_rules.h"
#include "common/config_file.h"
#include "gateway/config.h"
#include "gateway/identity_keys.h"
#include "gateway/known_hosts.h"
#include "gateway/policy.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"

namespace castgate {

struct GatewayContext;

// One file of a rule set, as it was read.
struct RuleFile {
  std::string option;  // the command-line option that names it ("--policy"), or "static_key"
  std::string path;
  FileStamp stamp;     // before it was read: a change while reading is seen at the next look
  std::string sha256;  // of its bytes (empty for private keys: their digest is not logged)
};

struct RuleSet {
  Targets targets;
  Policy policy;
  IdentityKeys identities;
  KnownHosts known_hosts;
  std::map<std::string, ssh::Key> static_keys;  // target name -> private key
  asciicast::AlertRules alerts;
  std::vector<RuleFile> files;
  // Over every file's bytes, static keys included: two sets with the same digest are the same.
  std::string digest;
  std::vector<std::string> warnings;  // for the log: pinned keys missing, and the like
};

// The largest configuration file castgate reads.
inline constexpr size_t kMaxConfigFile = 16 << 20;

// Reads and checks every file `config` names. `has_user_ca`: targets without a static key need
// the signer's user CA. Throws std::runtime_error naming the file and what is wrong. `attempted`
// (if given) gets every file it read or tried to, stamped before: on a failure, the files to
// watch for the fix (one missing may appear).
RuleSet load_rule_set(const GatewayConfig& config, bool has_user_ca,
                      std::vector<RuleFile>* attempted = nullptr);

// Puts `rules` in force in `context` (the parent's: its worker processes started from now on
// serve with it).
void install_rule_set(GatewayContext& context, RuleSet rules);

// Whether any file of `files` is not as it was read (replaced, rewritten, gone).
bool rule_files_changed(const std::vector<RuleFile>& files);

// The files' directories (and, for a symbolic link, its target's), which castgate's parent must
// be able to read again to reload them: a ConfigMap, or an editor, replaces a file rather than
// rewriting it.
std::vector<std::string> rule_directories(const std::vector<RuleFile>& files);

}  // namespace castgate
