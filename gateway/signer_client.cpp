#include "gateway/signer_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/encoding.h"
#include "common/log.h"

namespace castgate {

using signer::Message;
using signer::Type;

std::unique_ptr<SignerClient> SignerClient::start(const signer::ProcessOptions& options) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(std::string("cannot start the signer: ") + std::strerror(errno));
  signer::UniqueFd ours(pair[0]), theirs(pair[1]);
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error(std::string("cannot start the signer: ") + std::strerror(errno));
  if (pid == 0) {
    ours.reset();
    signer::run_process(theirs.release(), options);
  }
  theirs.reset();
  std::unique_ptr<SignerClient> client(new SignerClient(ours.release(), pid));
  auto answer = client->ask(Type::kHello, "", Type::kHelloAnswer);
  if (!answer) throw std::runtime_error(answer.error().detail);
  if (!signer::decode_strings(*answer, client->ca_blob_, client->recording_public_) ||
      client->recording_public_.size() != 32)
    throw std::runtime_error("the signer's hello is malformed");
  return client;
}

std::unique_ptr<SignerClient> SignerClient::adopt(int fd, std::string ca_blob,
                                                  std::string recording_public) {
  signer::UniqueFd owned(fd);
  if (!owned) throw std::runtime_error("no connection to the signer to adopt");
  if (recording_public.size() != 32) throw std::runtime_error("the recording key is malformed");
  std::unique_ptr<SignerClient> client(new SignerClient(owned.release(), 0));
  client->ca_blob_ = std::move(ca_blob);
  client->recording_public_ = std::move(recording_public);
  return client;
}

int SignerClient::attach_worker(const std::string& chain) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(std::string("cannot attach a worker to the signer: ") +
                             std::strerror(errno));
  signer::UniqueFd ours(pair[0]), theirs(pair[1]);
  // Once sent, the signer's end is in flight with its own reference: ours closes either way.
  auto answer = ask(Type::kAttach, chain, Type::kAttached, theirs.get());
  theirs.reset();
  if (!answer)
    throw std::runtime_error("cannot attach a worker to the signer: " + answer.error().detail);
  if (!answer->empty()) throw std::runtime_error("the signer's attach answer is malformed");
  return ours.release();
}

SignerClient::~SignerClient() {
  fd_.reset();            // the signer sees the end of its connection and exits
  if (pid_ == 0) return;  // adopted: the signer is not this process's child
  // The signer ends its audit chain and exits; it never waits on anything but stdout.
  for (int i = 0; i < 1000; ++i) {
    pid_t r = waitpid(pid_, nullptr, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) return;
    usleep(10000);
  }
  log::warn("the signer process did not end within 10 s");
}

std::string_view to_string(SignerError e) {
  switch (e) {
    case SignerError::kGone:
      return "gone";
    case SignerError::kNotAnswering:
      return "not answering";
    case SignerError::kTimedOut:
      return "timed out";
    case SignerError::kMalformedAnswer:
      return "malformed answer";
    case SignerError::kRefused:
      return "refused";
  }
  return "unknown";
}

SignerResult<std::string> SignerClient::ask(Type type, const std::string& body, Type want,
                                            int passed) const {
  std::lock_guard lock(mu_);
  uint32_t id = next_id_++;
  std::string packet = signer::encode(Message{type, id, body});
  auto logged = [](SignerError code, std::string why) {
    log::error("signer: " + why);
    return castgate::fail(code, std::move(why));
  };
  auto gone = [&]() {
    if (!gone_) {
      log::error("the signer process is gone: no session can start or be signed");
      if (pid_ > 0) waitpid(pid_, nullptr, WNOHANG);  // reap it (0 would reap any child)
    }
    gone_ = true;
    return castgate::fail(SignerError::kGone, "the signer process is gone");
  };
  if (gone_) return gone();
  auto now = std::chrono::steady_clock::now();
  // A signer that did not answer (blocked writing its audit line to a stalled stdout) is not
  // asked again for a while: the workers must not queue up behind it, each for kTimeout.
  if (now < silent_until_) return fail(SignerError::kNotAnswering, "the signer is not answering");
  auto deadline = now + kTimeout;
  auto timed_out = [&] {
    silent_until_ = std::chrono::steady_clock::now() + kTimeout;
    return logged(SignerError::kTimedOut, "the signer did not answer within 10 s");
  };
  bool sent = false;
  std::string& in = answer_buffer_;
  in.resize(signer::kMaxMessage + 1);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return timed_out();
    if (!sent) {
      ssize_t n = signer::send_packet(fd_.get(), packet, passed, MSG_DONTWAIT);
      if (n >= 0) {
        sent = true;
        continue;
      }
      if (errno != EAGAIN && errno != EINTR) return gone();
      pollfd w{fd_.get(), POLLOUT, 0};
      poll(&w, 1, static_cast<int>(left));
      continue;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    // Nothing should come with an answer; whatever does is closed with `got`.
    signer::Received got = signer::receive_packet(fd_.get(), in, MSG_DONTWAIT);
    if (got.size < 0 && got.error == EAGAIN) continue;
    if (got.size <= 0) return gone();
    auto m = signer::decode(std::string_view(in.data(), static_cast<size_t>(got.size)));
    if (!m)
      return logged(SignerError::kMalformedAnswer,
                    "the signer's answer is malformed: " + m.error().detail);
    if (m->id != id) continue;  // the late answer to a request that timed out
    if (m->type == Type::kRefused) {
      auto reason = signer::decode_string(m->body);
      return fail(SignerError::kRefused, reason ? *reason : std::string("refused"));
    }
    if (m->type != want)
      return logged(SignerError::kMalformedAnswer, "the signer answered with the wrong type");
    return std::move(m->body);
  }
}

std::string SignerClient::sign_line(std::string_view unsigned_line) const {
  auto answer = ask(Type::kSignLine, signer::encode_string(unsigned_line), Type::kSignature);
  if (!answer) {
    log::error("an event could not be signed: " + answer.error().detail);
    return {};
  }
  auto sig = signer::decode_string(*answer);
  return sig && sig->size() == 64 ? *sig : std::string();
}

std::string SignerClient::ca_public_line() const {
  return "ssh-ed25519 " + base64_encode(ca_blob_) + " castgate-user-ca";
}

SignerResult<SignerClient::Issued> SignerClient::sign_certificate(
    const signer::CertificateOrder& order) const {
  auto answer = ask(Type::kSignCertificate, signer::encode_order(order), Type::kCertificate);
  if (!answer) return fail(std::move(answer).error());
  Issued out;
  if (!signer::decode_certificate(*answer, out.serial, out.certificate))
    return fail(SignerError::kMalformedAnswer, "the signer's certificate answer is malformed");
  return out;
}

}  // namespace castgate
