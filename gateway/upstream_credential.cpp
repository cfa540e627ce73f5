#include "gateway/upstream_credential.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/signer_protocol.h"
#include "gateway/ssh_keys.h"

namespace castgate {

using nlohmann::json;

std::string_view to_string(CredentialError e) {
  switch (e) {
    case CredentialError::kKeyNotCopied:
      return "key not copied";
    case CredentialError::kKeyNotGenerated:
      return "key not generated";
    case CredentialError::kNotCertified:
      return "not certified";
    case CredentialError::kCertificateUnused:
      return "certificate unused";
  }
  return "unknown";
}

Result<UpstreamCredential, Error<CredentialError>> mint_upstream_credential(
    const UpstreamCredentialSources& sources, const UpstreamCredentialRequest& request) {
  UpstreamCredential out;
  const Target& target = request.target;
  auto st = sources.static_keys.find(target.name);
  if (st != sources.static_keys.end()) {
    // A static key is used as is; copy it so that the session owns its handle.
    out.key = ssh::copy_private_key(st->second.get());
    if (!out.key)
      return fail(CredentialError::kKeyNotCopied,
                  "the static key of " + target.name + " could not be copied");
    out.description = "static key";
    return out;
  }
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK)
    return fail(CredentialError::kKeyNotGenerated, "no session key could be generated");
  ssh::Key key(raw);
  std::string blob = ssh::public_key_blob(key.get());
  auto now = sources.clock.now();
  auto valid_before = now + (target.certificate_validity ? *target.certificate_validity
                                                         : sources.certificate_validity);
  signer::CertificateOrder order;
  order.public_key_blob = blob;
  order.key_id = "castgate session=" + request.session_id +
                 " identity=" + request.identity.subject +
                 (request.identity.email.empty() ? "" : " email=" + request.identity.email);
  order.principal = request.login;
  order.valid_after = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(now) - 60));
  order.valid_before = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(valid_before)));
  if (request.decision.pty) order.extensions |= signer::kPermitPty;
  if (request.decision.port_forwarding) order.extensions |= signer::kPermitPortForwarding;
  order.source_address = request.local_ip;
  auto issued = sources.signer.sign_certificate(order);
  if (!issued) {
    log::warn("session " + request.session_id + ": no certificate: " + issued.error().detail);
    return fail(CredentialError::kNotCertified, "no certificate: " + issued.error().detail);
  }
  const std::string& cert = issued->certificate;
  ssh_key cert_key = nullptr;
  if (ssh_pki_import_cert_base64(base64_encode(cert).c_str(), SSH_KEYTYPE_ED25519_CERT01,
                                 &cert_key) != SSH_OK)
    return fail(CredentialError::kCertificateUnused, "libssh cannot read the certificate");
  ssh::Key cert_owner(cert_key);
  if (ssh_pki_copy_cert_to_privkey(cert_owner.get(), key.get()) != SSH_OK)
    return fail(CredentialError::kCertificateUnused, "libssh cannot attach the certificate");
  out.description =
      "certificate serial " + std::to_string(issued->serial) + " for " + request.login +
      ", valid " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(valid_before - now).count()) +
      "s";
  out.issued = json{{"castgate",
                     {{"certificate",
                       {{"serial", std::to_string(issued->serial)},
                        {"key_id", order.key_id},
                        {"principals", {request.login}},
                        {"extensions", signer::extension_names(order.extensions)},
                        {"source_address", request.local_ip},
                        {"valid_before", rfc3339_micros(valid_before)}}}}}};
  out.key = std::move(key);
  return out;
}

}  // namespace castgate
