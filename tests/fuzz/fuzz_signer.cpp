// The signer process's request handling (signer.h) under any bytes a compromised castgate could
// send over its socket. Checked: every request gets exactly one well-formed answer with the
// request's id (or 0 for an undecodable frame); a certificate is only ever issued for one plain
// principal, with a validity within the limits, from the fixed extension set, and each one has
// its audit event; the recording key signs only event-shaped lines.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "asciicast/session_log.h"
#include "gateway/signer.h"
#include "gateway/signer_protocol.h"
#include "gateway/user_certificate.h"

using namespace castgate;
using namespace castgate::signer;

namespace {

struct CountingSink final : asciicast::LineSink {
  size_t lines = 0;
  void submit(std::string&&, const std::shared_ptr<asciicast::Backlog>&) override { ++lines; }
  bool has_room() const override { return true; }
  asciicast::SinkHealth health() const override { return asciicast::SinkHealth::kHealthy; }
};

void check(bool ok) {
  if (!ok) std::abort();
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
  // The input is a sequence of requests, each prefixed by a 2-byte length.
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (in.size() >= 2) {
    size_t n = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
    in.remove_prefix(2);
    n = std::min(n, in.size());
    std::string_view packet = in.substr(0, n);
    in.remove_prefix(n);
    size_t lines_before = sink.lines;
    uint64_t certs_before = signer.certificates();
    std::string error;
    auto request = decode(packet, error);
    auto answer = decode(signer.handle(packet), error);
    check(answer.has_value());
    check(answer->id == (request ? request->id : 0));
    if (answer->type == Type::kCertificate) {
      check(signer.certificates() == certs_before + 1);
      check(sink.lines == lines_before + 1);  // its audit event, before it left
      uint64_t serial = 0;
      std::string blob;
      check(decode_certificate(answer->body, serial, blob));
      ParsedCertificate cert;
      check(parse_certificate(blob, cert, error));
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
