// The credential a session logs in to its target with: the target's static key where it has
// one, else a fresh Ed25519 key and a short-lived certificate for it, signed by the signer
// process (user_certificate_signer.h) for the one login, the identity and the policy decision.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/identity.h"
#include "common/result.h"
#include "gateway/policy.h"
#include "gateway/signer_client.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"

namespace castgate {

// Where credentials come from: read-only for the life of a worker.
struct UpstreamCredentialSources {
  const std::map<std::string, ssh::Key>& static_keys;  // target name -> private key
  const SignerClient& signer;
  std::chrono::seconds certificate_validity;  // unless the target sets its own
  const Clock& clock;
};

// For whom and where: the session's signed-in identity, its login and the decision for it.
struct UpstreamCredentialRequest {
  const std::string& session_id;
  const Identity& identity;
  const std::string& login;
  const Target& target;
  const PolicyDecision& decision;
  const std::string& local_ip;  // the gateway's address towards the target: source-address
};

struct UpstreamCredential {
  ssh::Key key;
  // For upstream.connected: "static key", or the certificate's serial, login and validity.
  std::string description;
  // The fields of credential.issued, when a certificate was signed.
  std::optional<nlohmann::json> issued;
};

// Why no credential could be made (the session refuses with "credential_failed" whatever it is).
enum class CredentialError {
  kKeyNotCopied,       // the target's static key
  kKeyNotGenerated,    // the fresh Ed25519 key
  kNotCertified,       // the signer made no certificate (it logged why)
  kCertificateUnused,  // libssh would not take the certificate
};
std::string_view to_string(CredentialError e);

Result<UpstreamCredential, Error<CredentialError>> mint_upstream_credential(
    const UpstreamCredentialSources& sources, const UpstreamCredentialRequest& request);

}  // namespace castgate
