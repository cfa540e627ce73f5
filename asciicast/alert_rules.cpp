#include "asciicast/alert_rules.h"

#include <regex.h>

#include <algorithm>
#include <cctype>
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
       "(^|/)(\\.(bashrc|bash_profile|bash_login|bash_logout|bash_aliases|profile|zshenv|zprofile|"
       "zshrc|zlogin|"
       "kshrc|cshrc|tcshrc|login|pam_environment|environment)|\\.ssh/(rc|environment)|"
       "\\.config/(fish|environment\\.d)/.*|etc/(profile|profile\\.d/.*|bash\\.bashrc|environment|"
       "zsh/.*|ssh/sshrc))$",
       "path", "high"},
      // Files something on the target runs later by itself (cron, systemd, a desktop session,
      // git, ssh's ProxyCommand, the dynamic loader), written with their contents unrecorded.
      {"scheduled-or-autostart-file",
       "(^|/)(etc/(crontab|cron\\.(d|daily|hourly|weekly|monthly)/.*|systemd/system/.*|rc\\.local|"
       "ld\\.so\\.preload)|var/spool/cron/.*|\\.config/(systemd/user|autostart)/.*|"
       "\\.git/hooks/.*|\\.ssh/config|\\.local/bin/.*)$",
       "path", "high"},
  };
}

namespace {

size_t saturating(unsigned long long v) {
  return static_cast<size_t>(std::min<unsigned long long>(v, kMaxPatternWeight + 1));
}

}  // namespace

size_t pattern_weight(std::string_view p) {
  // What glibc's regcomp builds grows with the pattern, and a bounded repetition copies what it
  // repeats: ((a{1,100}){1,100}){1,80} is 26 bytes and most of a gibibyte. Atoms count one, a
  // group the sum of what it holds, x{m,n} max(m,n) times x.
  std::vector<size_t> open{0};  // the weight so far of each group open here
  size_t last = 0;              // of the last atom or group, which a {m,n} would repeat
  auto add = [&](size_t w) {
    open.back() = saturating(0ULL + open.back() + w);
    last = w;
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      ++i;
      add(1);
    } else if (c == '[') {  // a bracket expression: one atom ([]a], [^]a], [[:alpha:]])
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') {
        if (p[j] == '[' && j + 1 < p.size() &&
            (p[j + 1] == ':' || p[j + 1] == '=' || p[j + 1] == '.')) {
          size_t close = p.find(std::string{p[j + 1], ']'}, j + 2);
          j = close == std::string_view::npos ? p.size() : close + 2;
        } else {
          ++j;
        }
      }
      i = j;
      add(1);
    } else if (c == '(') {
      open.push_back(0);
      last = 0;
    } else if (c == ')' && open.size() > 1) {
      size_t group = open.back();
      open.pop_back();
      add(group);
    } else if (c == '{') {
      size_t j = i + 1;
      auto number = [&] {
        unsigned long long v = 0;
        while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j])))
          v = std::min<unsigned long long>(v * 10 + static_cast<unsigned>(p[j++] - '0'), 1 << 20);
        return v;
      };
      unsigned long long lo = number(), hi = lo;  // {n,} copies x n times, then x*
      if (j < p.size() && p[j] == ',') {
        ++j;
        hi = std::max(lo, number());
      }
      if (j >= p.size() || p[j] != '}') {  // not a repetition: regcomp says what it is
        add(1);
        continue;
      }
      size_t repeated = last;
      open.back() -= repeated;
      add(saturating(1ULL * repeated * std::max<unsigned long long>({lo, hi, 1})));
      i = j;
    } else if (c == '|' || c == '*' || c == '+' || c == '?' || c == '^' || c == '$') {
      last = c == '|' ? 0 : last;  // none of these copies anything
    } else {
      add(1);
    }
  }
  size_t total = 0;
  for (size_t w : open) total = saturating(0ULL + total + w);
  return total;
}

AlertRules AlertRules::compile(const std::vector<AlertRule>& rules) {
  AlertRules out;
  for (const auto& r : rules) {
    if (r.pattern.size() > kMaxPatternBytes || pattern_weight(r.pattern) > kMaxPatternWeight)
      throw std::runtime_error("alert rule " + r.name + ": the pattern is too large (over " +
                               std::to_string(kMaxPatternBytes) + " bytes, or repetitions " +
                               "such as {m,n} that multiply it past " +
                               std::to_string(kMaxPatternWeight) + " elements)");
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
