// The signer process's request handling (signer.h) under any bytes a compromised castgate could
// send over its socket. Checked: every request gets exactly one well-formed answer with the
// request's id (or 0 for an undecodable frame); a certificate is only ever issued for one plain
// principal, with a validity within the limits, from the fixed extension set, and each one has
// its audit event; the recording key signs only event-shaped lines. Requests may also arrive as
// the signer process receives them, on the control connection or a worker's, with descriptors
// passed along: a connection is attached only from the control connection, for exactly one
// SOCK_SEQPACKET socket, and every descriptor not attached is closed by the time the answer is
// out.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "gateway/signer.h"
#include "gateway/signer_protocol.h"
#include "gateway/user_certificate_signer.h"

using namespace castgate;
using namespace castgate::signer;

namespace {

struct CountingSink final : asciicast::LineSink {
  size_t lines = 0;
  void submit(std::string_view, const asciicast::ChainPoint&,
              const std::shared_ptr<asciicast::Backlog>&) override {
    ++lines;
  }
  bool has_room() const override { return true; }
  asciicast::SinkHealth health() const override { return asciicast::SinkHealth::kHealthy; }
};

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

// What comes with a request in the process, by a mode byte.
struct Passing {
  Arrival arrival;
  std::vector<int> passed;     // the descriptors' numbers, to check they were closed
  std::vector<UniqueFd> ours;  // their other ends
  bool one_socket = false;     // exactly one AF_UNIX SOCK_SEQPACKET socket passed
};

Passing passing(uint8_t mode) {
  Passing p;
  p.arrival.control = (mode & 1) != 0;
  // Rarely all connections taken.
  p.arrival.open_connections = (mode & 0x80) ? kMaxConnections : (mode >> 4) & 7;
  auto pass = [&](int kind) {
    int fds[2];
    bool ok = kind == 0   ? socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0
              : kind == 1 ? pipe2(fds, O_CLOEXEC) == 0
                          : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0;
    check(ok);
    p.ours.emplace_back(fds[0]);
    p.passed.push_back(fds[1]);
    p.arrival.fds.emplace_back(fds[1]);
  };
  switch ((mode >> 1) & 7) {
    case 0:  // none
      break;
    case 1:
      pass(0);
      p.one_socket = true;
      break;
    case 2:
      pass(1);
      break;
    case 3:
      pass(2);
      break;
    case 4:
      pass(0);
      pass(0);
      break;
    case 5:  // one that fit, more that the kernel dropped
      pass(0);
      p.arrival.truncated = true;
      break;
    default:
      p.arrival.truncated = true;
      break;
  }
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One signer for the whole run (making keys for every input would be most of the work); the
  // checks below compare its counters before and after each request.
  static ManualClock clock(
      std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000)));
  static CountingSink sink;
  static asciicast::SessionLog audit(asciicast::SessionLogOptions{"fuzz", 8192, nullptr},
                                     "signer-f", asciicast::Endpoint{}, sink,
                                     std::make_shared<asciicast::Backlog>(SIZE_MAX), clock);
  static const Limits limits;
  static Signer signer(std::make_unique<UserCertificateSigner>(
                           Ed25519PrivateKey::from_seed(std::string(32, 'c')).value()),
                       Ed25519PrivateKey::from_seed(std::string(32, 'r')).value(), limits, &audit,
                       clock);
  // The input is a sequence of requests, each prefixed by a 2-byte length. With its top bit set, a
  // mode byte follows, and the request goes through handle_arrival(), else through handle().
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (in.size() >= 2) {
    size_t n = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
    in.remove_prefix(2);
    std::optional<Passing> p;
    if (n & 0x8000) {
      if (in.empty()) break;
      p = passing(static_cast<uint8_t>(in[0]));
      in.remove_prefix(1);
      n &= 0x7fff;
    }
    n = std::min(n, in.size());
    std::string_view packet = in.substr(0, n);
    in.remove_prefix(n);
    size_t lines_before = sink.lines;
    uint64_t certs_before = signer.certificates();
    uint64_t connections_before = signer.connections();
    auto request = decode(packet);
    UniqueFd attached;
    std::string answer_bytes;
    bool must_refuse = false;
    if (p) {
      bool nothing_passed = p->arrival.fds.empty() && !p->arrival.truncated;
      bool can_attach = p->arrival.control && p->one_socket && !p->arrival.truncated &&
                        p->arrival.open_connections < kMaxConnections;
      answer_bytes = signer.handle_arrival(packet, std::move(p->arrival), attached);
      for (int fd : p->passed) check(is_open(fd) == (attached && attached.get() == fd));
      if (attached) check(can_attach);
      // Descriptors where none belong are a refusal, whatever the request.
      must_refuse = !nothing_passed && !(request && request->type == Type::kAttach);
    } else {
      answer_bytes = signer.handle(packet);
      must_refuse = request && request->type == Type::kAttach;  // no connection came with it
    }
    auto answer = decode(answer_bytes);
    check(answer.has_value());
    check(answer->id == (request ? request->id : 0));
    if (must_refuse) check(answer->type == Type::kRefused);
    check((answer->type == Type::kAttached) == static_cast<bool>(attached));
    check(signer.connections() == connections_before + (attached ? 1 : 0));
    if (answer->type == Type::kAttached) {
      check(request && request->type == Type::kAttach && request->body.empty());
      check(sink.lines == lines_before);
    } else if (answer->type == Type::kCertificate) {
      check(signer.certificates() == certs_before + 1);
      check(sink.lines == lines_before + 1);  // its audit event, before it left
      uint64_t serial = 0;
      std::string blob;
      check(decode_certificate(answer->body, serial, blob));
      auto parsed = parse_certificate(blob);
      check(parsed.has_value());
      const ParsedCertificate& cert = *parsed;
      check(verify_certificate_signature(cert));
      check(cert.principals.size() == 1 && !cert.principals[0].empty());
      check(cert.principals[0].find(',') == std::string::npos);
      check(cert.valid_before > cert.valid_after);
      check(cert.valid_before - cert.valid_after <=
            static_cast<uint64_t>(limits.max_validity.count() + limits.max_backdate.count()));
      check(cert.extensions.size() <= 2);
      for (const auto& [name, value] : cert.extensions)
        check(name == "permit-pty" || name == "permit-port-forwarding");
    } else if (answer->type == Type::kRefused) {
      check(signer.certificates() == certs_before);
      check(sink.lines == lines_before + 1);  // every refusal is an audit event too
    } else if (answer->type == Type::kSignature) {
      check(request && request->type == Type::kSignLine);
      auto line = decode_string(request->body);
      check(line && line->front() == '{' && line->back() == '}');
    } else {
      check(answer->type == Type::kHelloAnswer);
    }
  }
  return 0;
}
