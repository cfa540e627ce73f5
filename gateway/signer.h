// The signer: the only holder of the user-CA key and the recording key. castgate forks it at
// start-up (signer_client.h); it reads the key files itself, so no private key ever enters the
// process that parses the network. It signs only what it can check:
//  * a user certificate for one principal and one session's Ed25519 key, with a validity no
//    longer than --max-certificate-validity, starting near now, extensions from a fixed set and
//    a well-formed source-address; it picks the serial and writes its own audit event for every
//    certificate (and every refusal) in a hash chain of its own, signed when it ends, so a
//    compromised front end cannot mint silently;
//  * a session's last event (the recording key signs signature_payload(line) only, never raw
//    bytes).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/output_lock.h"
#include "gateway/signer_protocol.h"
#include "gateway/user_certificate.h"

namespace castgate::signer {

struct Limits {
  std::chrono::seconds max_validity{3600};  // valid_before - valid_after, at most
  std::chrono::seconds max_backdate{300};   // valid_after no earlier than now - this
  size_t max_line = 65536;                  // lines it signs
};

class Signer {
 public:
  // `ca` may be null (no user CA configured: certificates are refused). `audit` may be null
  // (printing the public keys).
  Signer(std::unique_ptr<UserCertificateSigner> ca, Ed25519PrivateKey recording_key,
         Limits limits, asciicast::SessionLog* audit, const Clock& clock);

  // One request in, its answer out (whole messages). Never throws.
  std::string handle(std::string_view packet);

  uint64_t certificates() const { return certificates_; }
  uint64_t lines() const { return lines_; }
  uint64_t refusals() const { return refusals_; }
  const std::string& recording_public_key() const { return recording_public_; }
  const Ed25519PrivateKey& recording_key() const { return recording_key_; }
  void set_audit(asciicast::SessionLog* audit) { audit_ = audit; }

 private:
  std::string certificate(const Message& request);
  std::string refuse(uint32_t id, const std::string& what, const std::string& reason);
  std::optional<std::string> order_problem(const CertificateOrder& o) const;

  std::unique_ptr<UserCertificateSigner> ca_;
  Ed25519PrivateKey recording_key_;
  std::string recording_public_;
  Limits limits_;
  asciicast::SessionLog* audit_;
  const Clock& clock_;
  uint64_t certificates_ = 0, lines_ = 0, refusals_ = 0;
};

struct ProcessOptions {
  std::string user_ca_key_file;  // "" for none
  std::string recording_key_file;
  bool generate_recording_key = false;  // --demo without a recording key
  Limits limits;
  std::string instance;
  bool audit = true;  // write the signer's own events to stdout
  OutputLock* output_lock = nullptr;
};

// The signer process's body: loads the keys (answering the first kHello with the public keys, or
// kRefused with why they could not be read), then answers requests on `fd` until castgate closes
// it, then ends its audit chain. Never returns.
[[noreturn]] void run_process(int fd, const ProcessOptions& options);

// Reads an Ed25519 private key: an unencrypted OpenSSH file or a PKCS#8 PEM.
// Everything read is zeroed. Throws std::runtime_error naming the file.
Ed25519PrivateKey load_ed25519_key(const std::string& path);

}  // namespace castgate::signer
