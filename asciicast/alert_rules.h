// Patterns that mark risky actions: on commands (typed in a shell or sent as exec) and on file
// paths (SFTP/SCP). A match puts an asciicast "m" marker in the recording and an alert event in
// the stream. POSIX extended regular expressions, case-insensitive.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace castgate::asciicast {

struct AlertRule {
  std::string name;
  std::string pattern;
  std::string applies_to;  // "command" or "path"
  std::string severity;    // "low", "medium", "high"
};

// Patterns are POSIX extended regular expressions, compiled by the process that reads them (a
// reload compiles in castgate's parent): their size is bounded before regcomp sees them.
inline constexpr size_t kMaxPatternBytes = 4096;
inline constexpr size_t kMaxPatternWeight = 20000;
// Elements regcomp would build for pattern `p`, about: atoms count one, x{m,n} max(m,n) times x.
size_t pattern_weight(std::string_view p);

class AlertRules {
 public:
  AlertRules();
  ~AlertRules();
  AlertRules(AlertRules&&) noexcept;
  AlertRules& operator=(AlertRules&&) noexcept;

  static std::vector<AlertRule> defaults();
  // Compiles the rules; throws std::runtime_error naming a rule whose pattern is invalid.
  static AlertRules compile(const std::vector<AlertRule>& rules);
  // JSON: [{"name": "...", "pattern": "...", "applies_to": "command", "severity": "high"}]
  static std::vector<AlertRule> parse(std::string_view json_text, const std::string& origin);

  // The rules that match `text` of the given kind.
  std::vector<const AlertRule*> match(std::string_view applies_to, std::string_view text) const;
  size_t size() const { return compiled_.size(); }

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace castgate::asciicast
