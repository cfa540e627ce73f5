// Public keys mapped to identities (common/identity.h), the keys file: the way service accounts
// (and, before OIDC, people) sign in. The file uses the authorized_keys layout, options first:
//   identity="alice",email="alice@example.com",groups="ops,dba",kind=human ssh-ed25519 AAAA...
//   laptop identity="ci-deploy",kind=workload ssh-ed25519 AAAA...
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/identity.h"
#include "common/result.h"

namespace castgate {

// A CA whose OpenSSH user certificates sign workloads (or people) in: "cert-authority" lines.
struct TrustedCa {
  std::string name;
  std::string key_blob;
  IdentityKind kind = IdentityKind::kWorkload;
  std::vector<std::string> groups;
};

class IdentityKeys {
 public:
  // Throws std::runtime_error naming the line for any malformed entry or duplicate key.
  static IdentityKeys parse(std::string_view text, const std::string& origin);

  // The identity for a public key blob, if the key is registered.
  const Identity* find(std::string_view key_blob) const;
  const TrustedCa* find_ca(std::string_view ca_key_blob) const;
  size_t size() const { return by_blob_.size(); }

 private:
  std::unordered_map<std::string, Identity> by_blob_;
  std::vector<TrustedCa> cas_;
};

enum class KeyOptionError {
  kUnterminatedQuote,
  kEmptyName,
  kMissingComma,  // something other than ',' after an option
};
std::string_view to_string(KeyOptionError e);

using KeyOptions = std::vector<std::pair<std::string, std::string>>;
// Splits authorized_keys-style options ("a=\"x,y\",b,c=d") into name/value pairs.
Result<KeyOptions, Error<KeyOptionError>> parse_key_options(std::string_view text);

}  // namespace castgate
