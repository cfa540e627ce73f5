// Signing in with an OpenSSH user certificate from a trusted CA (workloads whose certificates are
// issued from CI tokens, or people with a corporate SSH CA): the CA signature, the type, the
// validity window and the critical options are checked; the key id names the identity.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"
#include "gateway/identities.h"

namespace castgate {

struct CertificateCheck {
  bool ok = false;
  Identity identity;
  std::vector<std::string> principals;  // logins the certificate allows (empty: any)
  std::string reason;                   // why it was refused
};

bool is_certificate_key_type(std::string_view type);

CertificateCheck check_user_certificate(std::string_view blob, const IdentityKeys& identities,
                                        std::chrono::system_clock::time_point now,
                                        const std::string& client_ip);

// True if `ip` is inside one of the comma-separated CIDR blocks (or addresses) in `list`.
bool address_in_list(const std::string& ip, std::string_view list);

}  // namespace castgate
