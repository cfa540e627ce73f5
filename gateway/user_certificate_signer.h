// OpenSSH user certificates (PROTOCOL.certkeys): their format, and the signer of castgate's own
// (certificates clients present to sign in are checked in presented_certificate.h). castgate signs
// a short-lived certificate for each session's fresh key with its user-CA key; targets trust the CA
// (TrustedUserCAKeys), so no standing keys to the servers exist anywhere. libssh cannot sign
// certificates, so the blob is built here and signed with OpenSSL Ed25519.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto.h"
#include "common/result.h"

namespace castgate {

struct UserCertificateRequest {
  std::string public_key_blob;  // the session key's "ssh-ed25519" blob
  uint64_t serial = 0;
  std::string key_id;  // shows up in the target's sshd log: names the identity and session
  std::vector<std::string> principals;  // the login(s)
  std::chrono::system_clock::time_point valid_after;
  std::chrono::system_clock::time_point valid_before;
  std::vector<std::string> extensions;  // "permit-pty", "permit-port-forwarding", ...
  std::vector<std::pair<std::string, std::string>>
      critical_options;  // "source-address" -> "10.0.0.1/32"
};

// Why a certificate could not be made or read; the Error's detail says it in words.
enum class CertificateError {
  kNotEd25519Key,  // sign(): the request's key is not an Ed25519 key
  kTruncated,
  kBadKey,  // the certified key's fields
  kUnsupportedType,
  kBadSignatureField,
  kBadPrincipals,
  kBadCriticalOptions,
  kBadExtensions,
};
std::string_view to_string(CertificateError e);
template <class T>
using CertificateResult = Result<T, Error<CertificateError>>;

// Holds the CA private key; nothing but signatures and the public key leave it.
class UserCertificateSigner {
 public:
  explicit UserCertificateSigner(Ed25519PrivateKey ca_key);

  // Builds and signs the certificate; returns the certificate blob. Fails if the request is not
  // an Ed25519 key.
  CertificateResult<std::string> sign(const UserCertificateRequest& request) const;
  const std::string& ca_public_blob() const { return ca_blob_; }
  // "ssh-ed25519 AAAA... castgate-user-ca", for TrustedUserCAKeys on the targets.
  std::string ca_public_line() const;

 private:
  Ed25519PrivateKey ca_key_;
  std::string ca_blob_;
};

// A parsed OpenSSH certificate (used to inspect what castgate signed, and to check certificates
// presented by workloads).
struct ParsedCertificate {
  std::string type;  // "ssh-ed25519-cert-v01@openssh.com"
  std::string nonce;
  std::string public_key_blob;  // the certified key as a plain key blob
  uint64_t serial = 0;
  uint32_t cert_type = 0;  // 1 = user, 2 = host
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;
  uint64_t valid_before = 0;
  std::vector<std::pair<std::string, std::string>> critical_options;
  std::vector<std::pair<std::string, std::string>> extensions;
  std::string signature_key;  // CA public key blob
  std::string signature;      // signature blob
  std::string signed_part;    // the bytes the signature covers
};

// Parses a certificate blob (Ed25519, ECDSA P-256 or RSA); the error names what is wrong.
CertificateResult<ParsedCertificate> parse_certificate(std::string_view blob);
// Checks the CA signature of a parsed certificate.
bool verify_certificate_signature(const ParsedCertificate& cert);

}  // namespace castgate
