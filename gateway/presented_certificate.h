// The OpenSSH user certificates clients present to sign in, issued by a trusted CA (workloads whose
// certificates are issued from CI tokens, or people with a corporate SSH CA); not the ones castgate
// signs for its own upstream connections (user_certificate_signer.h): the CA signature, the type,
// the validity window, the principals and the critical options are checked; the key id names the
// identity. What OpenSSH's sshd refuses, castgate refuses too.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"
#include "common/result.h"
#include "gateway/identity_keys.h"

namespace castgate {

// A certificate that passed every check: whom it names and what it allows.
struct AcceptedCertificate {
  Identity identity;
  std::vector<std::string> principals;  // logins the certificate allows (never empty)
  uint64_t valid_before = 0;            // unix seconds: the certificate expires then
};

// Why a presented certificate was refused; the Error's detail is the refusal's reason in the
// audit event.
enum class CertificateRefusal {
  kUnreadable,
  kUntrustedCa,
  kBadSignature,
  kNotUserCertificate,
  kNotValidNow,
  kNoPrincipals,
  kBadSourceAddress,  // a malformed source-address list
  kWrongSourceAddress,
  kUnsupportedCriticalOption,
  kNoKeyId,
};
std::string_view to_string(CertificateRefusal e);
using CertificateCheck = Result<AcceptedCertificate, Error<CertificateRefusal>>;

bool is_certificate_key_type(std::string_view type);

CertificateCheck check_presented_certificate(std::string_view blob, const IdentityKeys& identities,
                                             std::chrono::system_clock::time_point now,
                                             const std::string& client_ip);

// The value of a certificate's "source-address" critical option: comma-separated addresses and
// CIDR blocks, IPv4 or IPv6 ("10.0.0.0/8,192.0.2.7,2001:db8::/32"). Read as strictly as OpenSSH's
// addr_match_cidr_list reads it, because a lenient reading widens what the CA allowed (an
// unreadable prefix length taken as /0 matches every address): any malformed entry makes the
// whole list an error, and a certificate with such a list is refused.
enum class AddressListError {
  kNone,
  kEmptyEntry,       // an empty list, ",," or a comma at either end
  kTooManyEntries,   // more than AddressList::kMaxEntries
  kEntryTooLong,     // longer than the longest IPv6 address with "/128"
  kBadAddress,       // not a dotted-quad IPv4 or a textual IPv6 address (no names, no scope ids)
  kBadPrefixLength,  // not decimal digits only, or beyond 32 (IPv4) or 128 (IPv6)
  kHostBitsSet,      // "10.0.0.1/8": bits set past the prefix (OpenSSH refuses these too)
};

std::string_view to_string(AddressListError e);  // "bad prefix length", for refusal reasons

struct AddressBlock {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> network{};
  int prefix_length = 0;
};

struct AddressList {
  static constexpr size_t kMaxEntries = 256;
  std::vector<AddressBlock> blocks;
  AddressListError error = AddressListError::kNone;
  std::string bad_entry;  // the entry at fault (printable, capped) when error is set

  bool ok() const { return error == AddressListError::kNone; }
  // True if the list is well formed and `ip` (an IPv4 address also when written IPv4-mapped,
  // "::ffff:10.1.2.3") is inside one of its blocks.
  bool contains(std::string_view ip) const;
};

AddressList parse_address_list(std::string_view text);

// True if `list` is a well-formed address list and `ip` is inside one of its blocks.
bool address_in_list(const std::string& ip, std::string_view list);

}  // namespace castgate
