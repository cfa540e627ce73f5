#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "asciicast/chain.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gateway/signer.h"
#include "gateway/signer_client.h"
#include "gateway/signer_protocol.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"
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

const auto kSignerNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

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

struct SignerFixture {
  ManualClock clock{kSignerNow};
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
    auto m = decode(signer.handle(encode(Message{type, id, body})));
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

// Key files for a signer process: PKCS#8 PEM of a seed, as `openssl genpkey -algorithm ed25519`
// writes it.
struct KeyFiles {
  std::string dir;
  KeyFiles() {
    char dir_template[] = "/tmp/castgate-signer-XXXXXX";
    REQUIRE(mkdtemp(dir_template));
    dir = dir_template;
    write_pem("ca", 'c');
    write_pem("rec", 'r');
  }
  ~KeyFiles() { std::system(("rm -rf " + dir).c_str()); }
  void write_pem(const std::string& name, char fill) const {
    std::string der("\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20", 16);
    der += std::string(32, fill);
    std::ofstream(dir + "/" + name) << "-----BEGIN PRIVATE KEY-----\n"
                                    << base64_encode(der) << "\n-----END PRIVATE KEY-----\n";
  }
  ProcessOptions options() const {
    ProcessOptions opts;
    opts.user_ca_key_file = dir + "/ca";
    opts.recording_key_file = dir + "/rec";
    opts.audit = false;
    return opts;
  }
};

// An order the real clock accepts.
CertificateOrder order_now(const std::string& key_id) {
  auto o = good_order();
  auto now = unix_seconds(std::chrono::system_clock::now());
  o.valid_after = static_cast<uint64_t>(now - 60);
  o.valid_before = static_cast<uint64_t>(now + 300);
  o.key_id = key_id;
  return o;
}

std::string final_line(const std::string& session) {
  return R"({"castgate":{"final":true,"session":")" + session + R"("}})";
}

// The certificate's key id if it is a good certificate for `order`, else "".
std::string certified_key_id(const SignerResult<SignerClient::Issued>& issued,
                             const CertificateOrder& order) {
  if (!issued) return "";
  auto cert = parse_certificate(issued->certificate);
  if (!cert || !verify_certificate_signature(*cert) ||
      cert->public_key_blob != order.public_key_blob)
    return "";
  return cert->key_id;
}

// One request on a raw connection to the signer, `passed` going along unless -1; its answer
// (waited on for at most 10 s).
Message round_trip(int fd, const std::string& packet, int passed = -1) {
  REQUIRE(send_packet(fd, packet, passed, 0) == static_cast<ssize_t>(packet.size()));
  pollfd p{fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 10000) == 1);
  std::string in(kMaxMessage + 1, '\0');
  Received got = receive_packet(fd, in, 0);
  REQUIRE(got.size > 0);
  CHECK(got.fds.empty());
  auto m = decode(std::string_view(in.data(), static_cast<size_t>(got.size)));
  REQUIRE(m);
  return *m;
}

std::string attach_frame(uint32_t id) {
  return encode(Message{Type::kAttach, id, ""});
}

// Descriptors open in process `pid`; -1 if they cannot be counted.
int open_fds(pid_t pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

// Whether nobody holds the other end of `fd` (a pipe's read end, or a socket) any more.
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 2000) == 1 && (p.revents & POLLHUP);
}

// Two round trips on the control connection: the signer has seen every connection closed before
// the first one was sent, and dropped it (it serves a round's messages before its ends).
void settle(const SignerClient& control) {
  for (int i = 0; i < 2; ++i) CHECK_FALSE(control.sign_line(final_line("settle")).empty());
}

// A signer process on a raw control connection, after its hello.
struct RawSigner {
  KeyFiles keys;
  int control = -1;
  pid_t pid = -1;
  RawSigner() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
    ProcessOptions opts = keys.options();
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      run_process(fds[1], opts);
    }
    close(fds[1]);
    control = fds[0];
    REQUIRE(round_trip(control, encode(Message{Type::kHello, 1, ""})).type == Type::kHelloAnswer);
  }
  // Closes the control connection; the process's exit status, or -1 if it did not end in 10 s.
  int end() {
    if (control >= 0) close(control);
    control = -1;
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
      usleep(10000);
    }
    return -1;
  }
  ~RawSigner() {
    if (control >= 0 && end() == -1) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

}  // namespace

TEST_CASE("the signer signs a certificate for one principal and writes its own audit event") {
  SignerFixture f;
  auto m = f.ask(Type::kSignCertificate, encode_order(good_order()));
  REQUIRE(m.type == Type::kCertificate);
  uint64_t serial = 0;
  std::string blob;
  REQUIRE(decode_certificate(m.body, serial, blob));
  auto parsed = parse_certificate(blob);
  REQUIRE(parsed);
  const ParsedCertificate& cert = *parsed;
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
  SignerFixture f;
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
  SignerFixture f;
  for (std::string junk : {std::string(), std::string("\x00\x00\x00\x01", 4),
                           std::string("\x00\x00\x00\x06\x02\x02\x00\x00\x00\x01", 10),  // v2
                           std::string("\x00\x00\x00\x06\x01\x42\x00\x00\x00\x01", 10),  // type
                           std::string(70000, 'x')}) {
    auto m = decode(f.signer.handle(junk));
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
  KeyFiles keys;
  std::string dir = keys.dir;
  ProcessOptions opts = keys.options();
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
    REQUIRE(issued);
    CHECK_FALSE(issued->certificate.empty());
    o.valid_before = static_cast<uint64_t>(now + 7200);
    issued = client->sign_certificate(o);
    REQUIRE_FALSE(issued);
    CHECK(issued.error().code == SignerError::kRefused);
    CHECK(issued.error().detail.find("longer") != std::string::npos);
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
    auto m = decode(std::string_view(in.data(), static_cast<size_t>(n)));
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
}

TEST_CASE("no certificate leaves the signer unless its audit line was written") {
  SignerFixture f;
  bool written = true;
  f.signer.set_audit(&f.audit, [&written] { return written; });
  CHECK(f.ask(Type::kSignCertificate, encode_order(good_order())).type == Type::kCertificate);
  written = false;  // stdout failed (or could not be written within the timeout)
  auto m = f.ask(Type::kSignCertificate, encode_order(good_order()));
  CHECK(m.type == Type::kRefused);
  CHECK(decode_string(m.body).value_or("").find("audit") != std::string::npos);
  CHECK(f.signer.certificates() == 1);
}

TEST_CASE("the signer process serves each attached worker on its own connection") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  auto a = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  auto b = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  CHECK(a->pid() == 0);
  CHECK(a->has_user_ca());
  CHECK(a->public_key_raw() == control->public_key_raw());
  // Both adopted clients number their requests from 1: an answer that crossed would be taken.
  for (int i = 0; i < 10; ++i) {
    std::string n = std::to_string(i);
    auto oa = order_now("a-" + n), ob = order_now("b-" + n);
    auto ia = a->sign_certificate(oa);
    auto ib = b->sign_certificate(ob);
    CHECK(certified_key_id(ia, oa) == "a-" + n);
    CHECK(certified_key_id(ib, ob) == "b-" + n);
    std::string la = final_line("a-" + n), lb = final_line("b-" + n), lc = final_line("c-" + n);
    std::string sb = b->sign_line(lb), sa = a->sign_line(la), sc = control->sign_line(lc);
    CHECK(ed25519_verify(control->public_key_raw(), asciicast::signature_payload(la), sa));
    CHECK(ed25519_verify(control->public_key_raw(), asciicast::signature_payload(lb), sb));
    CHECK(ed25519_verify(control->public_key_raw(), asciicast::signature_payload(lc), sc));
  }
  // At once, from two threads (two worker processes' worth), and the parent.
  auto run = [](const SignerClient& client, const std::string& name, int& good) {
    for (int i = 0; i < 40; ++i) {
      std::string tag = name + "-" + std::to_string(i);
      auto o = order_now(tag);
      if (certified_key_id(client.sign_certificate(o), o) == tag) ++good;
      std::string line = final_line(tag);
      if (ed25519_verify(client.public_key_raw(), asciicast::signature_payload(line),
                         client.sign_line(line)))
        ++good;
    }
  };
  int good_a = 0, good_b = 0, good_c = 0;
  std::thread ta(run, std::cref(*a), "a", std::ref(good_a));
  std::thread tb(run, std::cref(*b), "b", std::ref(good_b));
  run(*control, "c", good_c);
  ta.join();
  tb.join();
  CHECK(good_a == 80);
  CHECK(good_b == 80);
  CHECK(good_c == 80);
}

TEST_CASE("the signer process: an attached connection that closes disturbs no other") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  auto a = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  auto b = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  std::string line = final_line("s1");
  CHECK_FALSE(a->sign_line(line).empty());
  a.reset();  // a worker that ended (or crashed)
  auto o = order_now("b");
  CHECK(certified_key_id(b->sign_certificate(o), o) == "b");
  CHECK_FALSE(b->sign_line(line).empty());
  CHECK_FALSE(control->sign_line(line).empty());
  CHECK_FALSE(control->gone());
  CHECK_FALSE(b->gone());
  // Its replacement.
  auto c = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  CHECK_FALSE(c->sign_line(line).empty());
  pid_t pid = control->pid();
  // A worker's connection ends; the signer's descriptors go back down.
  int before = open_fds(pid);
  c.reset();
  b.reset();
  settle(*control);
  if (before >= 0) CHECK(open_fds(pid) == before - 2);
}

TEST_CASE("the signer process refuses an attach from a worker and keeps nothing it passed") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  int worker = control->attach_worker();
  pid_t pid = control->pid();
  int before = open_fds(pid);
  if (before < 0) MESSAGE("/proc/" << pid << "/fd cannot be read: counting skipped");
  // A socket that would be a good connection, and a pipe.
  int pair[2], pipe_fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  auto m = round_trip(worker, attach_frame(5), pair[1]);
  CHECK(m.type == Type::kRefused);
  CHECK(m.id == 5);
  CHECK(decode_string(m.body).value_or("").find("control") != std::string::npos);
  CHECK(round_trip(worker, attach_frame(6), pipe_fds[1]).type == Type::kRefused);
  // Smuggled with a line to sign: refused too, and closed.
  int smuggled[2];
  REQUIRE(pipe2(smuggled, O_CLOEXEC) == 0);
  CHECK(round_trip(worker, encode(Message{Type::kSignLine, 7, encode_string(final_line("s"))}),
                   smuggled[1])
            .type == Type::kRefused);
  if (before >= 0) CHECK(open_fds(pid) == before);
  // Nobody else holds them: once ours are closed, their other ends see the end.
  close(pair[1]);
  close(pipe_fds[1]);
  close(smuggled[1]);
  CHECK(peer_closed(pair[0]));
  CHECK(peer_closed(pipe_fds[0]));
  CHECK(peer_closed(smuggled[0]));
  close(pair[0]);
  close(pipe_fds[0]);
  close(smuggled[0]);
  // The worker's connection still works, without descriptors.
  auto signed_line =
      round_trip(worker, encode(Message{Type::kSignLine, 8, encode_string(final_line("s"))}));
  CHECK(signed_line.type == Type::kSignature);
  CHECK(signed_line.id == 8);
  close(worker);
}

TEST_CASE("the signer process takes only one AF_UNIX SOCK_SEQPACKET socket per attach") {
  RawSigner s;
  int before = open_fds(s.pid);
  int pipe_fds[2], stream[2], dgram[2], good[2], extra[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stream) == 0);
  REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dgram) == 0);
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, good) == 0);
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, extra) == 0);
  auto reason = [](const Message& m) { return decode_string(m.body).value_or(""); };
  auto m = round_trip(s.control, attach_frame(2), pipe_fds[1]);
  CHECK(m.type == Type::kRefused);
  CHECK(reason(m).find("SOCK_SEQPACKET") != std::string::npos);
  CHECK(round_trip(s.control, attach_frame(3), stream[1]).type == Type::kRefused);
  CHECK(round_trip(s.control, attach_frame(4), dgram[1]).type == Type::kRefused);
  m = round_trip(s.control, attach_frame(5));  // nothing passed
  CHECK(m.type == Type::kRefused);
  CHECK(reason(m).find("exactly one") != std::string::npos);
  m = round_trip(s.control, encode(Message{Type::kAttach, 6, "x"}), good[1]);
  CHECK(m.type == Type::kRefused);
  // Two sockets in one attach: neither is taken.
  {
    std::string packet = attach_frame(7);
    iovec iov{packet.data(), packet.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int two[2] = {good[1], extra[1]};
    std::memcpy(CMSG_DATA(c), two, sizeof(two));
    REQUIRE(sendmsg(s.control, &msg, 0) == static_cast<ssize_t>(packet.size()));
    pollfd p{s.control, POLLIN, 0};
    REQUIRE(poll(&p, 1, 10000) == 1);
    std::string in(kMaxMessage + 1, '\0');
    Received got = receive_packet(s.control, in, 0);
    REQUIRE(got.size > 0);
    auto answer = decode(std::string_view(in.data(), static_cast<size_t>(got.size)));
    REQUIRE(answer);
    CHECK(answer->type == Type::kRefused);
    CHECK(answer->id == 7);
  }
  if (before >= 0) CHECK(open_fds(s.pid) == before);
  for (int* p : {pipe_fds, stream, extra}) {  // (a datagram socket shows no end)
    close(p[1]);
    CHECK(peer_closed(p[0]));
    close(p[0]);
  }
  close(dgram[0]);
  close(dgram[1]);
  // And the good one alone is taken: a connection of its own.
  m = round_trip(s.control, attach_frame(8), good[1]);
  CHECK(m.type == Type::kAttached);
  CHECK(m.id == 8);
  CHECK(m.body.empty());
  close(good[1]);
  CHECK(round_trip(good[0], encode(Message{Type::kSignLine, 1, encode_string(final_line("s"))}))
            .type == Type::kSignature);
  close(good[0]);
  CHECK(s.end() == 0);
}

TEST_CASE("the signer process attaches at most kMaxConnections connections at once") {
  rlimit r{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &r) == 0);
  const rlim_t need = 2 * kMaxConnections + 64;
  if (r.rlim_max < need) {
    MESSAGE("the hard RLIMIT_NOFILE is too low for this test: skipped");
    return;
  }
  {
    // Forked under a soft limit of 1024 descriptors: the signer raises its own.
    rlimit low = r;
    low.rlim_cur = std::min<rlim_t>(1024, r.rlim_cur);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    auto raw = std::make_unique<RawSigner>();
    rlimit raised = r;
    raised.rlim_cur = std::max(need, r.rlim_cur);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &raised) == 0);
    RawSigner& s = *raw;
    std::vector<UniqueFd> ours;
    for (size_t i = 0; i < kMaxConnections; ++i) {
      int pair[2];
      REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
      UniqueFd theirs(pair[1]);
      ours.emplace_back(pair[0]);
      auto m = round_trip(s.control, attach_frame(static_cast<uint32_t>(i + 2)), theirs.get());
      REQUIRE(m.type == Type::kAttached);
    }
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd mine(pair[0]), theirs(pair[1]);
    auto m = round_trip(s.control, attach_frame(9999), theirs.get());
    CHECK(m.type == Type::kRefused);
    CHECK(decode_string(m.body).value_or("").find("too many") != std::string::npos);
    // One ends: room for one more.
    ours.front().reset();
    for (uint32_t id : {10000, 10001})
      round_trip(s.control, encode(Message{Type::kSignLine, id, encode_string(final_line("s"))}));
    CHECK(round_trip(s.control, attach_frame(10002), theirs.get()).type == Type::kAttached);
    CHECK(s.end() == 0);
  }
  setrlimit(RLIMIT_NOFILE, &r);
}

TEST_CASE("the signer process refuses garbage on an attached connection and goes on serving it") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  int worker = control->attach_worker();
  for (std::string junk : {std::string("\x01\x02\x03"), std::string("\x00\x00\x00\x01", 4),
                           std::string("\x00\x00\x00\x06\x02\x02\x00\x00\x00\x01", 10),  // v2
                           std::string("\x00\x00\x00\x06\x01\x42\x00\x00\x00\x01", 10),  // type
                           std::string(70000, 'x'), encode(Message{Type::kCertificate, 3, ""}),
                           encode(Message{Type::kAttached, 4, ""}),
                           encode(Message{Type::kSignCertificate, 5, std::string("\x00\x00", 2)})})
    CHECK(round_trip(worker, junk).type == Type::kRefused);
  auto client = SignerClient::adopt(worker, control->ca_public_blob(), control->public_key_raw());
  auto o = order_now("after-garbage");
  CHECK(certified_key_id(client->sign_certificate(o), o) == "after-garbage");
  CHECK_FALSE(client->sign_line(final_line("s1")).empty());
  CHECK_FALSE(control->sign_line(final_line("s1")).empty());
}

TEST_CASE("the signer process ends with its control connection, attached ones or not") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  auto a = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  auto b = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                               control->public_key_raw());
  CHECK_FALSE(a->sign_line(final_line("s1")).empty());
  pid_t pid = control->pid();
  auto began = std::chrono::steady_clock::now();
  control.reset();  // closes the control connection and waits for the process (10 s at most)
  CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(5));
  int gone = kill(pid, 0) == 0 ? 0 : errno;
  CHECK(gone == ESRCH);  // ended and reaped
  CHECK(a->sign_line(final_line("s2")).empty());
  CHECK(a->gone());
  auto o = order_now("b");
  auto refused = b->sign_certificate(o);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == SignerError::kGone);
  CHECK_FALSE(refused.error().detail.empty());
  CHECK(b->gone());
  CHECK_THROWS_AS(SignerClient::adopt(-1, "", std::string(32, 'x')), std::runtime_error);
}

TEST_CASE("the signer process's chain counts the connections attached over its life") {
  KeyFiles keys;
  ProcessOptions opts = keys.options();
  opts.audit = true;
  // Its stdout is a pipe of ours, for as long as it takes to fork it.
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  std::cout.flush();
  std::fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  REQUIRE(saved >= 0);
  REQUIRE(dup2(out[1], STDOUT_FILENO) == STDOUT_FILENO);
  std::unique_ptr<SignerClient> control;
  try {
    control = SignerClient::start(opts);
  } catch (...) {
  }
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(out[1]);
  REQUIRE(control);
  for (int i = 0; i < 3; ++i) close(control->attach_worker());
  int worker = control->attach_worker();
  CHECK(round_trip(worker, attach_frame(2)).type == Type::kRefused);
  close(worker);
  control.reset();
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;)
    text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(json::parse(l));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["event"]["action"] == "signer.start");
  CHECK(lines[1]["event"]["action"] == "signer.refused");
  CHECK(lines[1]["castgate"]["signed"]["request"] == "attach");
  CHECK(lines[2]["event"]["action"] == "signer.stop");
  CHECK(lines[2]["castgate"]["signed"]["connections"] == 4);
  CHECK(lines[2]["castgate"]["signed"]["refusals"] == 1);
  CHECK(lines[2]["castgate"]["signed"]["certificates"] == 0);
}

TEST_CASE("the signer process signs a lost session's closing event for the parent only") {
  // A worker that cut its own session short must not be able to make it read "lost by the
  // gateway": only the parent, on the control connection, closes the chains of a dead worker.
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  auto worker = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                                    control->public_key_raw());
  std::string lost =
      R"({"castgate":{"final":true,"lost":{"signal":9,"worker_pid":42},"session":"s1"}})";
  CHECK(worker->sign_line(lost).empty());
  CHECK(ed25519_verify(control->public_key_raw(), asciicast::signature_payload(lost),
                       control->sign_line(lost)));
  // The worker's connection still serves what it may ask for.
  std::string own = final_line("s2");
  CHECK(ed25519_verify(control->public_key_raw(), asciicast::signature_payload(own),
                       worker->sign_line(own)));
}

TEST_CASE(
    "the signer signs checkpoints in a process's own chain only: the parent's from the parent") {
  KeyFiles keys;
  auto control = SignerClient::start(keys.options());
  const std::string mine = "worker-pfx12abcdefghij", other = "worker-qqqqqabcdefghij";
  auto worker = SignerClient::adopt(control->attach_worker(mine), control->ca_public_blob(),
                                    control->public_key_raw());
  auto unnamed = SignerClient::adopt(control->attach_worker(), control->ca_public_blob(),
                                     control->public_key_raw());
  auto checkpoint = [](const std::string& session, const std::string& ids = R"("pfx12-s1")",
                       const std::string& extra = "") {
    return R"({"castgate":{"checkpoint":{"ended":[],"interval":60,"number":1,"open":[)" + ids +
           R"(],"started":[]},)" + extra + R"("session":")" + session +
           R"("},"event":{"action":"checkpoint"}})";
  };
  CHECK_FALSE(worker->sign_line(checkpoint(mine)).empty());
  CHECK_FALSE(control->sign_line(checkpoint(mine)).empty());
  CHECK_FALSE(control->sign_line(checkpoint("gateway-abc", R"("worker-x")")).empty());
  // Another worker's chain, sessions without the worker's prefix or named "worker-…", a worker
  // connection attached without a chain; the parent's chain or a session's from a worker; the
  // signer's chain; a checkpoint that also ends or loses a chain; another action; malformed ones.
  CHECK(worker->sign_line(checkpoint(other)).empty());
  CHECK(worker->sign_line(checkpoint(mine, R"("qqqqq-s1")")).empty());
  CHECK(worker->sign_line(checkpoint(mine, R"("worker-pfx12zz")")).empty());
  CHECK(unnamed->sign_line(checkpoint(mine)).empty());
  CHECK(worker->sign_line(checkpoint("gateway-abc")).empty());
  CHECK(worker->sign_line(checkpoint("pfx12-s1")).empty());
  CHECK(control->sign_line(checkpoint("signer-abc")).empty());
  CHECK(worker->sign_line(checkpoint(mine, R"("pfx12-s1")", R"("final":true,)")).empty());
  CHECK(control->sign_line(checkpoint(mine, R"("pfx12-s1")", R"("lost":{},)")).empty());
  CHECK(worker
            ->sign_line(R"({"castgate":{"checkpoint":{},"session":"worker-pfx12abcdefghij"},)"
                        R"("event":{"action":"session.end"}})")
            .empty());
  CHECK(worker->sign_line(checkpoint(mine, "5")).empty());
  CHECK(control
            ->sign_line(R"({"castgate":{"checkpoint":{"number":1},"session":"gateway-a"},)"
                        R"("event":{"action":"checkpoint"}})")
            .empty());
}
