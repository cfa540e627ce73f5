#include "asciicast/alert_rules.h"

#include <regex.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/json_config.h"

namespace castgate::asciicast {

struct AlertRules::Compiled {
  AlertRule rule;
  regex_t re{};
  ~Compiled() { regfree(&re); }
};

AlertRules::AlertRules() = default;
AlertRules::~AlertRules() = default;
AlertRules::AlertRules(AlertRules&&) noexcept = default;
AlertRules& AlertRules::operator=(AlertRules&&) noexcept = default;

std::vector<AlertRule> AlertRules::defaults() {
  const char* sp = "[[:space:]]";
  std::string s(sp);
  return {
      {"disable-audit-logging",
       "(unset" + s + "+HISTFILE|HISTFILE=/dev/null|HISTSIZE=0|history" + s + "+-c|set" + s +
           "+\\+o" + s + "+history|(systemctl|service)" + s + "+(stop|disable|mask|kill)" + s +
           "+(rsyslog|syslog|syslog-ng|auditd|systemd-journald|fluent-bit|td-agent)|service" + s +
           "+(rsyslog|auditd|syslog)" + s + "+stop|auditctl" + s + "+(-e" + s +
           "*0|-D)|(>|truncate" + s + ".*)" + s + "*/var/log/)",
       "command", "high"},
      {"recursive-delete-of-root",
       "(^|[;&|(]|" + s + ")rm" + s + "+(-[a-z]*" + s + "+)*-[a-z]*r[a-z]*" + s + "+(-[a-z-]+" + s +
           "+)*/(\\*)?(" + s + "|$|;)",
       "command", "high"},
      {"firewall-flush",
       "((ip6?tables|iptables-legacy|iptables-nft)" + s + ".*(-F|--flush|-X)(" + s + "|$)|nft" + s +
           "+flush" + s + "+ruleset|ufw" + s + "+(disable|reset)|(systemctl|service)" + s +
           "+(stop|disable)" + s + "+(firewalld|nftables|ufw|iptables))",
       "command", "high"},
      {"account-or-sudoers-change",
       "(^|[;&|(]|" + s +
           "|/)(useradd|userdel|usermod|adduser|deluser|groupadd|groupmod|gpasswd|"
           "chpasswd|passwd|visudo|chage)(" +
           s + "|$)|/etc/(sudoers|passwd|shadow|group)",
       "command", "medium"},
      {"download-and-execute",
       "(curl|wget|fetch)" + s + "[^|]*\\|" + s + "*(sudo" + s +
           "+)?([a-z]*sh|python[0-9.]*|perl)(" + s + "|$|[;&|)])",
       "command", "high"},
      {"credential-file-change",
       "(^|/)(etc/(sudoers(\\.d/.*)?|shadow|passwd|group)|\\.ssh/authorized_keys[^/]*)$", "path",
       "high"},
      // Files a shell or sshd reads before running a command: written over SFTP or SCP (contents
      // not recorded), one can make the next `scp -t` or sftp-server run something else.
      {"shell-startup-file",
       "(^|/)(\\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshenv|zprofile|zshrc|zlogin|"
       "kshrc|cshrc|tcshrc|login|pam_environment|environment)|\\.ssh/(rc|environment)|"
       "\\.config/(fish|environment\\.d)/.*|etc/(profile|profile\\.d/.*|bash\\.bashrc|environment|"
       "zsh/.*|ssh/sshrc))$",
       "path", "high"},
  };
}

AlertRules AlertRules::compile(const std::vector<AlertRule>& rules) {
  AlertRules out;
  for (const auto& r : rules) {
    auto c = std::make_unique<Compiled>();
    c->rule = r;
    int rc = regcomp(&c->re, r.pattern.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
      char buf[256];
      regerror(rc, &c->re, buf, sizeof buf);
      c->re = regex_t{};  // regfree on a zeroed pattern is a no-op
      throw std::runtime_error("alert rule " + r.name + ": invalid pattern: " + buf);
    }
    out.compiled_.push_back(std::move(c));
  }
  return out;
}

std::vector<AlertRule> AlertRules::parse(std::string_view json_text, const std::string& origin) {
  nlohmann::json doc = parse_config_json(json_text, origin);
  if (!doc.is_array()) throw std::runtime_error(origin + ": expected a list of rules");
  std::vector<AlertRule> rules;
  size_t index = 0;
  for (auto& r : doc) {
    ConfigObject c(r, origin + ": rule " + std::to_string(index++));
    c.allow_only({"name", "pattern", "applies_to", "severity"});
    AlertRule rule{c.str("name"), c.str("pattern"), c.str("applies_to", "command"),
                   c.str("severity", "medium")};
    if (rule.name.empty() || rule.pattern.empty())
      throw std::runtime_error(c.where() + ": every rule needs a name and a pattern");
    if (rule.applies_to != "command" && rule.applies_to != "path")
      throw std::runtime_error(c.where() + ": applies_to is command or path");
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::vector<const AlertRule*> AlertRules::match(std::string_view applies_to,
                                                std::string_view text) const {
  std::vector<const AlertRule*> hits;
  // regexec needs a terminated string; very long input is checked in its first 64 KiB.
  std::string s(text.substr(0, 65536));
  for (const auto& c : compiled_)
    if (c->rule.applies_to == applies_to && regexec(&c->re, s.c_str(), 0, nullptr, 0) == 0)
      hits.push_back(&c->rule);
  return hits;
}

}  // namespace castgate::asciicast
