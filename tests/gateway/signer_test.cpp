#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "asciicast/chain.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gateway/signer.h"
#include "gateway/signer_client.h"
#include "gateway/signer_protocol.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate.h"
#include "tests/asciicast/memory_sink.h"

using namespace castgate;
using namespace castgate::signer;
using nlohmann::json;

namespace {

std::vector<std::string> actions(const asciicast::testing::MemorySink& sink) {
  std::vector<std::string> out;
  for (const auto& l : sink.lines) out.push_back(json::parse(l)["event"]["action"]);
  return out;
}

std::string ed25519_blob(const std::string& raw) {
  ssh::WireWriter w;
  w.string("ssh-ed25519");
  w.string(raw);
  return w.take();
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

CertificateOrder good_order() {
  CertificateOrder o;
  o.public_key_blob = ed25519_blob(Ed25519PrivateKey::generate().public_key_raw());
  o.key_id = "castgate session=s1 identity=oidc:alice";
  o.principal = "ubuntu";
  o.valid_after = 1'800'000'000 - 60;
  o.valid_before = 1'800'000'000 + 300;
  o.extensions = kPermitPty;
  o.source_address = "127.0.0.1";
  return o;
}

struct Fixture {
  ManualClock clock{kNow};
  asciicast::testing::MemorySink sink;
  asciicast::SessionLog audit{asciicast::SessionLogOptions{"gw-test", 8192, nullptr},
                              "signer-t",
                              asciicast::Endpoint{},
                              sink,
                              std::make_shared<asciicast::Backlog>(SIZE_MAX),
                              clock};
  Ed25519PrivateKey ca_key = Ed25519PrivateKey::from_seed(std::string(32, 'c')).value();
  Signer signer{std::make_unique<UserCertificateSigner>(ca_key_copy()),
                Ed25519PrivateKey::from_seed(std::string(32, 'r')).value(), Limits{}, &audit,
                clock};
  static Ed25519PrivateKey ca_key_copy() {
    return Ed25519PrivateKey::from_seed(std::string(32, 'c')).value();
  }

  Message ask(Type type, const std::string& body, uint32_t id = 7) {
    std::string error;
    auto m = decode(signer.handle(encode(Message{type, id, body})), error);
    REQUIRE(m);
    CHECK(m->id == id);
    return *m;
  }
  std::string refusal(const CertificateOrder& o) {
    auto m = ask(Type::kSignCertificate, encode_order(o));
    if (m.type != Type::kRefused) return "";
    return decode_string(m.body).value_or("?");
  }
};

}  // namespace

TEST_CASE("the signer signs a certificate for one principal and writes its own audit event") {
  Fixture f;
  auto m = f.ask(Type::kSignCertificate, encode_order(good_order()));
  REQUIRE(m.type == Type::kCertificate);
  uint64_t serial = 0;
  std::string blob;
  REQUIRE(decode_certificate(m.body, serial, blob));
  ParsedCertificate cert;
  std::string error;
  REQUIRE(parse_certificate(blob, cert, error));
  CHECK(verify_certificate_signature(cert));
  CHECK(cert.serial == serial);
  CHECK(cert.principals == std::vector<std::string>{"ubuntu"});
  CHECK(cert.valid_before - cert.valid_after == 360);
  REQUIRE(cert.extensions.size() == 1);
  CHECK(cert.extensions[0].first == "permit-pty");
  REQUIRE(cert.critical_options.size() == 1);
  CHECK(cert.critical_options[0].second == "127.0.0.1");
  CHECK(f.signer.certificates() == 1);
  REQUIRE(f.sink.lines.size() == 1);
  json audit = json::parse(f.sink.lines[0]);
  CHECK(audit["event"]["action"] == "signer.certificate");
  CHECK(audit["castgate"]["certificate"]["serial"] == std::to_string(serial));
  CHECK(audit["castgate"]["certificate"]["principals"] == json::array({"ubuntu"}));
  CHECK(audit["castgate"]["signed"]["certificates"] == 1);
}

TEST_CASE("the signer refuses what it cannot check, each with an audit event") {
  Fixture f;
  auto o = good_order();
  o.principal = "root,ubuntu";  // two principals in one
  CHECK(f.refusal(o).find("principal") != std::string::npos);
  o = good_order();
  o.principal = "";
  CHECK(f.refusal(o).find("principal") != std::string::npos);
  o = good_order();
  o.valid_before = o.valid_after + 2 * 3600;  // longer than --max-certificate-validity
  CHECK(f.refusal(o).find("longer") != std::string::npos);
  o = good_order();
  o.valid_after = 1'800'000'000 + 86400;  // starts tomorrow
  o.valid_before = o.valid_after + 60;
  CHECK(f.refusal(o).find("start") != std::string::npos);
  o = good_order();
  o.valid_after = 1'000'000;  // backdated by years
  o.valid_before = 1'800'000'000 + 60;
  CHECK_FALSE(f.refusal(o).empty());
  o = good_order();
  o.extensions = 0x80;  // not in the fixed set
  CHECK(f.refusal(o).find("extension") != std::string::npos);
  for (const char* source : {"10.0.0.0/abc", "", "0.0.0.0/0", "10.0.0.1,10.0.0.2", "::/0"}) {
    o = good_order();
    o.source_address = source;
    CHECK(f.refusal(o).find("source-address") != std::string::npos);
  }
  o = good_order();
  o.public_key_blob = "garbage";
  CHECK(f.refusal(o).find("Ed25519") != std::string::npos);
  o = good_order();
  o.key_id = "id\x1b]0;x\x07";
  CHECK(f.refusal(o).find("control") != std::string::npos);
  o = good_order();
  o.key_id = "id \u202e reversed";  // a bidi override
  CHECK(f.refusal(o).find("control") != std::string::npos);
  o = good_order();
  o.valid_after = 1'800'000'000 + 30;  // within limits in length, but ends past now + 1h
  o.valid_before = 1'800'000'000 + 3600 + 30;
  CHECK(f.refusal(o).find("longer") != std::string::npos);
  CHECK(f.signer.certificates() == 0);
  CHECK(f.signer.refusals() == 15);
  CHECK(f.sink.lines.size() == 15);
  for (const auto& a : actions(f.sink)) CHECK(a == "signer.refused");
}

TEST_CASE("the signer refuses garbage frames and signs event lines only") {
  Fixture f;
  std::string error;
  for (std::string junk : {std::string(), std::string("\x00\x00\x00\x01", 4),
                           std::string("\x00\x00\x00\x06\x02\x02\x00\x00\x00\x01", 10),  // v2
                           std::string("\x00\x00\x00\x06\x01\x42\x00\x00\x00\x01", 10),  // type
                           std::string(70000, 'x')}) {
    auto m = decode(f.signer.handle(junk), error);
    REQUIRE(m);
    CHECK(m->type == Type::kRefused);
  }
  // An answer type sent as a request, a hello with a body, a short order.
  CHECK(f.ask(Type::kCertificate, "").type == Type::kRefused);
  CHECK(f.ask(Type::kHello, "x").type == Type::kRefused);
  CHECK(f.ask(Type::kSignCertificate, "\x00\x00").type == Type::kRefused);
  // Lines: the last event of a session only, signed with the domain-separated payload. Not raw
  // bytes, not an event that is not final or already signed, not the signer's own chain.
  for (std::string bad : {std::string("raw bytes"), std::string("{\xff}"), std::string("{}"),
                          std::string(R"({"castgate":{"session":"s1"}})"),
                          std::string(R"({"castgate":{"final":true,"session":"s1","sig":"x"}})"),
                          std::string(R"({"castgate":{"final":true,"session":"signer-x"}})")})
    CHECK(f.ask(Type::kSignLine, encode_string(bad)).type == Type::kRefused);
  std::string line = R"({"castgate":{"final":true,"session":"s1"}})";
  auto m = f.ask(Type::kSignLine, encode_string(line));
  REQUIRE(m.type == Type::kSignature);
  auto sig = decode_string(m.body);
  REQUIRE(sig);
  CHECK(ed25519_verify(f.signer.recording_public_key(), asciicast::signature_payload(line), *sig));
  CHECK(f.signer.lines() == 1);
  auto hello = f.ask(Type::kHello, "");
  std::string ca, rec;
  REQUIRE(decode_strings(hello.body, ca, rec));
  CHECK(rec == f.signer.recording_public_key());
  CHECK_FALSE(ca.empty());
}

TEST_CASE("the signer process: keys read there, requests straight to its socket, chain on exit") {
  char dir_template[] = "/tmp/castgate-signer-XXXXXX";
  REQUIRE(mkdtemp(dir_template));
  std::string dir = dir_template;
  // PKCS#8 PEM of a seed, as `openssl genpkey -algorithm ed25519` writes it.
  auto write_pem = [&](const std::string& name, char fill) {
    std::string der("\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20", 16);
    der += std::string(32, fill);
    std::ofstream(dir + "/" + name) << "-----BEGIN PRIVATE KEY-----\n"
                                    << base64_encode(der) << "\n-----END PRIVATE KEY-----\n";
  };
  write_pem("ca", 'c');
  write_pem("rec", 'r');
  ProcessOptions opts;
  opts.user_ca_key_file = dir + "/ca";
  opts.recording_key_file = dir + "/rec";
  opts.audit = false;
  {
    auto client = SignerClient::start(opts);
    CHECK(client->has_user_ca());
    CHECK(client->public_key_raw() ==
          Ed25519PrivateKey::from_seed(std::string(32, 'r'))->public_key_raw());
    auto o = good_order();
    auto now = unix_seconds(std::chrono::system_clock::now());
    o.valid_after = static_cast<uint64_t>(now - 60);
    o.valid_before = static_cast<uint64_t>(now + 300);
    auto issued = client->sign_certificate(o);
    CHECK(issued.error.empty());
    CHECK_FALSE(issued.certificate.empty());
    o.valid_before = static_cast<uint64_t>(now + 7200);
    issued = client->sign_certificate(o);
    CHECK(issued.certificate.empty());
    CHECK(issued.error.find("longer") != std::string::npos);
    std::string line = R"({"castgate":{"final":true,"session":"s1"}})";
    std::string sig = client->sign_line(line);
    CHECK(ed25519_verify(client->public_key_raw(), asciicast::signature_payload(line), sig));
    CHECK(client->sign_line("{}").empty());  // refused: castgate writes that line unsigned
  }
  // A key file it cannot read: the reason comes back to castgate.
  opts.recording_key_file = dir + "/missing";
  CHECK_THROWS_WITH_AS(SignerClient::start(opts), doctest::Contains("missing"), std::runtime_error);
  // Straight to its socket: garbage, then a request from a front end that lies.
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
  opts.recording_key_file = dir + "/rec";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    run_process(fds[1], opts);
  }
  close(fds[1]);
  auto round_trip = [&](const std::string& out) {
    REQUIRE(send(fds[0], out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    std::string in(kMaxMessage + 1, '\0');
    ssize_t n = recv(fds[0], in.data(), in.size(), 0);
    REQUIRE(n > 0);
    std::string error;
    auto m = decode(std::string_view(in.data(), static_cast<size_t>(n)), error);
    REQUIRE(m);
    return *m;
  };
  CHECK(round_trip(encode(Message{Type::kHello, 1, ""})).type == Type::kHelloAnswer);
  CHECK(round_trip("\x01\x02\x03").type == Type::kRefused);
  auto o = good_order();
  o.principal = "root,admin";
  CHECK(round_trip(encode(Message{Type::kSignCertificate, 2, encode_order(o)})).type ==
        Type::kRefused);
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("no certificate leaves the signer unless its audit line was written") {
  Fixture f;
  bool written = true;
  f.signer.set_audit(&f.audit, [&written] { return written; });
  CHECK(f.ask(Type::kSignCertificate, encode_order(good_order())).type == Type::kCertificate);
  written = false;  // stdout failed (or could not be written within the timeout)
  auto m = f.ask(Type::kSignCertificate, encode_order(good_order()));
  CHECK(m.type == Type::kRefused);
  CHECK(decode_string(m.body).value_or("").find("audit") != std::string::npos);
  CHECK(f.signer.certificates() == 1);
}
