// castgate's side of the signer (signer.h): starts the signer process and asks it for
// certificates and signatures. Thread-safe (workers share it); each request waits at most
// kTimeout for its answer, and a signer that is gone makes every request fail, never hang: no
// certificate means no session (fail closed), and a last event it cannot sign is written unsigned
// (verify reports it).
//
// castgate's parent holds the client start() makes (the control connection). Each worker process
// needs a connection of its own, or answers would cross between processes: the parent asks for
// one with attach_worker() before it forks the worker, and closes its copy after the fork; the
// worker drops the parent's client (in the worker that only closes its copy of the control
// connection: the signer sees no end, and is not the worker's child) and adopt()s its connection.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "asciicast/record_signer.h"
#include "common/result.h"
#include "gateway/signer.h"
#include "gateway/signer_protocol.h"

namespace castgate {

// Why a request to the signer failed; the Error's detail is what the log and the caller say.
enum class SignerError {
  kGone,             // the signer process ended
  kNotAnswering,     // it timed out lately and is left alone for a while
  kTimedOut,         // no answer within kTimeout
  kMalformedAnswer,  // an answer that does not decode, or of the wrong type
  kRefused,          // the signer refused: the detail is its reason
};
std::string_view to_string(SignerError e);
template <class T>
using SignerResult = Result<T, Error<SignerError>>;

class SignerClient final : public asciicast::RecordSigner {
 public:
  static constexpr std::chrono::seconds kTimeout{10};

  // Forks the signer process (call before any thread starts) and waits for its hello: its public
  // keys, or why it could not read the key files (thrown as std::runtime_error).
  static std::unique_ptr<SignerClient> start(const signer::ProcessOptions& options);
  // A client on a connection attach_worker() made, in the worker process, with the public keys
  // the parent learned from the hello (no hello is sent). Takes `fd`; throws std::runtime_error
  // if it or the recording key is unusable.
  static std::unique_ptr<SignerClient> adopt(int fd, std::string ca_blob,
                                             std::string recording_public);
  // Closes the socket. The control connection's: the signer writes its last audit event and
  // exits (its attached connections end with it); waits for it. An adopted one's: only that.
  ~SignerClient() override;
  SignerClient(const SignerClient&) = delete;
  SignerClient& operator=(const SignerClient&) = delete;

  const std::string& public_key_raw() const override { return recording_public_; }
  std::string sign_line(std::string_view unsigned_line) const override;

  bool has_user_ca() const { return !ca_blob_.empty(); }
  const std::string& ca_public_blob() const { return ca_blob_; }
  std::string ca_public_line() const;  // "ssh-ed25519 AAAA... castgate-user-ca"

  struct Issued {
    std::string certificate;  // the blob
    uint64_t serial = 0;
  };
  SignerResult<Issued> sign_certificate(const signer::CertificateOrder& order) const;

  // A new connection to the signer for a worker process, on the control connection (the parent
  // side): returns its descriptor (close-on-exec) for the worker to adopt(). Throws
  // std::runtime_error if the signer refused it or is gone.
  // `chain`: the worker's own chain ("worker-…"), the only one whose checkpoints the signer will
  // sign on that connection.
  int attach_worker(const std::string& chain = "");

  pid_t pid() const { return pid_; }  // 0 for an adopted client: the process is the parent's
  // The signer process has ended (found when a request failed): castgate reports itself
  // unhealthy, and no session can start.
  bool gone() const {
    std::lock_guard lock(mu_);
    return gone_;
  }

 private:
  SignerClient(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
  // Sends one request (with `passed` as SCM_RIGHTS unless it is -1) and returns the answer's body
  // if its type is `want`.
  SignerResult<std::string> ask(signer::Type type, const std::string& body, signer::Type want,
                                int passed = -1) const;

  signer::UniqueFd fd_;
  pid_t pid_;
  std::string ca_blob_, recording_public_;
  mutable std::mutex mu_;
  mutable uint32_t next_id_ = 1;
  mutable bool gone_ = false;  // the signer process ended: logged once
  mutable std::chrono::steady_clock::time_point silent_until_{};  // after a request timed out
  mutable std::string answer_buffer_;  // one message's room, kept between requests (under mu_)
};

}  // namespace castgate
