// Pinned upstream host keys in OpenSSH known_hosts format. castgate never trusts a key on first
// use: a target whose key is not listed, or listed differently, is refused.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace castgate {

enum class HostKeyCheck { kMatch, kMismatch, kUnknown, kRevoked };
std::string_view to_string(HostKeyCheck check);

class KnownHosts {
 public:
  // Parses the file's text. Malformed lines make it throw std::runtime_error naming the line;
  // @cert-authority lines are skipped with a warning (host certificates are not supported).
  static KnownHosts parse(std::string_view text, const std::string& origin,
                          std::vector<std::string>* warnings = nullptr);

  // `names` are the target's names in known_hosts form: "host" for port 22, "[host]:port" else.
  HostKeyCheck check(const std::vector<std::string>& names, std::string_view key_blob) const;
  // Key types pinned for these names, to ask the server for exactly those ("ssh-ed25519", ...).
  std::vector<std::string> key_types_for(const std::vector<std::string>& names) const;
  size_t size() const { return entries_.size(); }

  // "host" or "[host]:port".
  static std::string host_name_for(std::string_view host, int port);

 private:
  struct Entry {
    std::vector<std::string> patterns;  // may be hashed (|1|salt|hash) or negated (!pattern)
    std::string key_type;
    std::string key_blob;
    bool revoked = false;
  };
  static bool matches(const Entry& entry, const std::vector<std::string>& names);
  std::vector<Entry> entries_;
};

}  // namespace castgate
