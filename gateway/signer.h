// The signer: the only holder of the user-CA key and the recording key. castgate forks it at
// start-up (signer_client.h); it reads the key files itself, so no private key ever enters the
// process that parses the network. It signs only what it can check:
//  * a user certificate for one principal and one session's Ed25519 key, valid from about now
//    until at most now + --max-certificate-validity, extensions from a fixed set and
//    source-address naming exactly one address; it picks the serial and writes its own audit
//    event for every certificate (and every refusal) in a hash chain of its own, signed when it
//    ends, and hands a certificate out only once its audit line is written;
//  * a session's last event: a JSON object marked final, of a session that is not the signer's
//    own (signature_payload(line) only, never raw bytes).
// It serves castgate's parent on the control connection and each worker process on a connection
// of its own, attached by the parent (signer_protocol.h); a worker cannot attach more.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/output_lock.h"
#include "gateway/signer_protocol.h"
#include "gateway/user_certificate_signer.h"

namespace castgate::signer {

struct Limits {
  std::chrono::seconds max_validity{3600};  // valid_before - valid_after, at most
  std::chrono::seconds max_backdate{300};   // valid_after no earlier than now - this
  size_t max_line = 65536;                  // lines it signs
};

// Attached connections open at once, at most (castgate runs far fewer workers).
inline constexpr size_t kMaxConnections = 1024;

// How a request reached the signer process: on which connection, with which descriptors.
struct Arrival {
  bool control = false;         // on the control connection (castgate's parent), not a worker's
  std::vector<UniqueFd> fds;    // passed with it (SCM_RIGHTS)
  bool truncated = false;       // the kernel dropped descriptors that did not fit (MSG_CTRUNC)
  size_t open_connections = 0;  // attached connections open now
  // The worker process's own chain, as the parent named it when it attached the connection: the
  // only chain whose checkpoints the signer signs for it. Empty on the control connection.
  std::string chain;
};

class Signer {
 public:
  // `ca` may be null (no user CA configured: certificates are refused). `audit` may be null
  // (printing the public keys).
  Signer(std::unique_ptr<UserCertificateSigner> ca, Ed25519PrivateKey recording_key, Limits limits,
         asciicast::SessionLog* audit, const Clock& clock);

  // One request in, its answer out (whole messages), as from the control connection. Never
  // throws. A kAttach is refused here: it needs the connection that came with it (handle_arrival).
  std::string handle(std::string_view packet);
  // A request as the signer process receives it. kAttach is taken from the control connection
  // only, carrying exactly one AF_UNIX SOCK_SEQPACKET socket, while fewer than kMaxConnections
  // are open: that socket moves to `attached`. Descriptors passed with any other request are a
  // refusal. Every descriptor not moved to `attached` is closed before this returns. Never throws.
  // `attached_chain` gets the chain the parent named for an attached connection.
  std::string handle_arrival(std::string_view packet, Arrival arrival, UniqueFd& attached,
                             std::string* attached_chain = nullptr);

  uint64_t certificates() const { return certificates_; }
  uint64_t lines() const { return lines_; }
  uint64_t refusals() const { return refusals_; }
  uint64_t connections() const { return connections_; }  // attached, over the signer's life
  const std::string& recording_public_key() const { return recording_public_; }
  const Ed25519PrivateKey& recording_key() const { return recording_key_; }
  // `written` says whether every audit line so far reached stdout whole; a certificate is handed
  // out only if its audit line did.
  void set_audit(asciicast::SessionLog* audit, std::function<bool()> written) {
    audit_ = audit;
    audit_written_ = std::move(written);
  }

 private:
  std::string handle_request(std::string_view packet, bool from_parent, const std::string& chain);
  std::string certificate(const Message& request);
  std::string attach(const Message& request, Arrival& arrival, UniqueFd& attached);
  std::string refuse(uint32_t id, const std::string& what, const std::string& reason);
  std::optional<std::string> order_problem(const CertificateOrder& o) const;

  std::unique_ptr<UserCertificateSigner> ca_;
  Ed25519PrivateKey recording_key_;
  std::string recording_public_;
  Limits limits_;
  asciicast::SessionLog* audit_;
  std::function<bool()> audit_written_;
  const Clock& clock_;
  uint64_t certificates_ = 0, lines_ = 0, refusals_ = 0, connections_ = 0;
};

struct ProcessOptions {
  std::string user_ca_key_file;  // "" for none
  std::string recording_key_file;
  bool generate_recording_key = false;  // --demo without a recording key
  Limits limits;
  std::string instance;
  bool audit = true;        // write the signer's own events to stdout
  std::string audit_chain;  // its id ("signer-…"), chosen by the parent, whose checkpoints name it
  OutputLock* output_lock = nullptr;
};

// The signer process's body: loads the keys (answering the first kHello with the public keys, or
// kRefused with why they could not be read), then answers requests on `fd` (the control
// connection) and on the connections attached through it, until castgate closes the control
// connection; then it ends its audit chain and exits. Never returns.
[[noreturn]] void run_process(int fd, const ProcessOptions& options);

// What the recording key signs for castgate: one canonical event line, a JSON object with no sig
// yet, that is either the last event of a chain (castgate.final true) that is not a signer's
// chain — castgate.lost (a session.lost or worker.lost event) only `from_parent` — or a
// checkpoint in a worker process's own chain ("worker-…"), or in the parent's ("gateway-…") only
// `from_parent`.
// A checkpoint must be well formed (number, interval of 1 s to 1 h, lists of chain ids), and one
// from a worker must be in `worker_chain` (the chain of its connection) and name only chains
// that carry its prefix.
bool signable_event(std::string_view line, size_t max_line, bool from_parent,
                    const std::string& worker_chain = "");
// `attached` (kAttach) takes the worker's chain id from the attach message's body.

// Reads an Ed25519 private key: an unencrypted OpenSSH file or a PKCS#8 PEM.
// Everything read is zeroed. Throws std::runtime_error naming the file.
Ed25519PrivateKey load_ed25519_key(const std::string& path);

}  // namespace castgate::signer
