#include "gateway/rule_set.h"

#include <openssl/crypto.h>

#include <filesystem>
#include <set>
#include <stdexcept>

#include "common/crypto.h"
#include "gateway/context.h"

namespace castgate {

namespace {

class Reader {
 public:
  Reader(RuleSet& rules, std::vector<RuleFile>* attempted) : rules_(rules), attempted_(attempted) {}

  std::string read(const std::string& option, const std::string& path, bool secret = false) {
    RuleFile f;
    f.option = option;
    f.path = path;
    f.stamp = FileStamp::of(path);
    if (attempted_) attempted_->push_back(f);
    std::string text = read_config_file(path, kMaxConfigFile);
    std::string digest = sha256_hex(text);
    combined_ += option + '\0' + path + '\0' + digest + '\0';
    if (!secret) f.sha256 = std::move(digest);
    rules_.files.push_back(std::move(f));
    return text;
  }
  std::string digest() const { return sha256_hex(combined_); }

 private:
  RuleSet& rules_;
  std::vector<RuleFile>* attempted_;
  std::string combined_;
};

// A static key must never be one of the signer's keys (a hard link, another path to it): those
// stay in the signer process, never in a worker's memory.
void check_not_a_signer_key(const std::string& target, const RuleFile& key,
                            const GatewayConfig& config) {
  for (const auto& signer_key : {config.user_ca_key_file, config.recording_key_file}) {
    if (signer_key.empty()) continue;
    auto s = FileStamp::of(signer_key);
    if (s.exists() && s.dev == key.stamp.dev && s.ino == key.stamp.ino)
      throw std::runtime_error("target " + target + ": static_key " + key.path +
                               " is the signer's key " + signer_key);
  }
}

ssh::Key parse_private_key(const std::string& text, const std::string& path) {
  ssh_key key = nullptr;
  int rc = ssh_pki_import_privkey_base64(text.c_str(), nullptr, nullptr, nullptr, &key);
  if (rc != SSH_OK || !key)
    throw std::runtime_error(path + ": cannot read the private key (unencrypted OpenSSH or PEM)");
  return ssh::Key(key);
}

}  // namespace

RuleSet load_rule_set(const GatewayConfig& config, bool has_user_ca,
                      std::vector<RuleFile>* attempted) {
  RuleSet rules;
  Reader reader(rules, attempted);
  if (config.targets_file.empty()) throw std::runtime_error("--targets is required");
  rules.targets =
      Targets::parse(reader.read("--targets", config.targets_file), config.targets_file);
  if (config.policy_file.empty()) throw std::runtime_error("--policy is required");
  rules.policy = Policy::parse(reader.read("--policy", config.policy_file), config.policy_file);
  if (!config.identities_file.empty())
    rules.identities = IdentityKeys::parse(reader.read("--identities", config.identities_file),
                                           config.identities_file);
  if (config.known_hosts_file.empty())
    throw std::runtime_error("--known-hosts is required: target host keys must be pinned");
  rules.known_hosts = KnownHosts::parse(reader.read("--known-hosts", config.known_hosts_file),
                                        config.known_hosts_file, &rules.warnings);
  for (const auto& name : rules.targets.names()) {
    const Target* t = rules.targets.find(name);
    if (t->certificate_validity && *t->certificate_validity > config.max_certificate_validity)
      throw std::runtime_error("target " + name +
                               ": certificate_validity is longer than --max-certificate-validity");
    if (!t->static_key_path.empty()) {
      std::string text = reader.read("static_key", t->static_key_path, true);
      check_not_a_signer_key(name, rules.files.back(), config);
      try {
        rules.static_keys.emplace(name, parse_private_key(text, t->static_key_path));
      } catch (...) {
        OPENSSL_cleanse(text.data(), text.size());
        throw;
      }
      OPENSSL_cleanse(text.data(), text.size());
    } else if (!has_user_ca) {
      throw std::runtime_error("target " + name +
                               " needs the user CA (--user-ca-key) or a static_key");
    }
    if (rules.known_hosts.key_types_for(t->known_hosts_names()).empty())
      rules.warnings.push_back("no host key is pinned for target " + name +
                               "; sessions to it will be refused");
  }
  // A listener for one target keeps it: its port is open until castgate restarts.
  for (const auto& l : config.listens)
    if (!l.target.empty() && !rules.targets.find(l.target))
      throw std::runtime_error("--listen " + l.text() + ": target " + l.target +
                               " is not configured");
  std::vector<asciicast::AlertRule> alert_rules;
  if (config.default_alerts) alert_rules = asciicast::AlertRules::defaults();
  if (!config.alert_rules_file.empty())
    for (auto& r : asciicast::AlertRules::parse(
             reader.read("--alert-rules", config.alert_rules_file), config.alert_rules_file))
      alert_rules.push_back(std::move(r));
  rules.alerts = asciicast::AlertRules::compile(alert_rules);
  rules.digest = reader.digest();
  return rules;
}

void install_rule_set(GatewayContext& ctx, RuleSet rules) {
  ctx.targets = std::move(rules.targets);
  ctx.policy = std::move(rules.policy);
  ctx.identities = std::move(rules.identities);
  ctx.known_hosts = std::move(rules.known_hosts);
  ctx.static_keys = std::move(rules.static_keys);
  ctx.alerts = std::move(rules.alerts);
  ctx.rule_files = std::move(rules.files);
  ctx.rules_digest = std::move(rules.digest);
}

bool rule_files_changed(const std::vector<RuleFile>& files) {
  for (const auto& f : files)
    if (!(FileStamp::of(f.path) == f.stamp)) return true;
  return false;
}

std::vector<std::string> rule_directories(const std::vector<RuleFile>& files) {
  namespace fs = std::filesystem;
  std::set<std::string> dirs;
  for (const auto& f : files) {
    auto named = fs::absolute(f.path).lexically_normal();
    dirs.insert(named.parent_path().string());
    // A link to a file elsewhere: that directory too (a ConfigMap's links stay beneath).
    std::error_code ec;
    auto real = fs::canonical(named, ec);
    if (!ec) dirs.insert(real.parent_path().string());
  }
  return {dirs.begin(), dirs.end()};
}

}  // namespace castgate
