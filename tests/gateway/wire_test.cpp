#include <doctest/doctest.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"

using namespace castgate;

namespace {
// ssh-keygen -t ed25519 -N '' -C test-ca (a throwaway key for tests only)
const char* kCaKey = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBpYGEzfykmmlb5+I4LJdrLFhW0lntQ3HhK5V33gSvp9wAAAJDaHf/j2h3/
4wAAAAtzc2gtZWQyNTUxOQAAACBpYGEzfykmmlb5+I4LJdrLFhW0lntQ3HhK5V33gSvp9w
AAAEBjJPDZPAcAlBYhwx7+oajzNGJ3xIxSFt/sNRJMRTCJFWlgYTN/KSaaVvn4jgsl2ssW
FbSWe1DceErlXfeBK+n3AAAAB3Rlc3QtY2EBAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
)";
const char* kCaPub =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlgYTN/KSaaVvn4jgsl2ssWFbSWe1DceErlXfeBK+n3 test-ca";
}  // namespace

TEST_CASE("OpenSSH Ed25519 private keys are read; the public key matches ssh-keygen's") {
  auto seed = ssh::parse_openssh_ed25519_private_key(kCaKey);
  REQUIRE(seed);
  auto key = Ed25519PrivateKey::from_seed(*seed);
  REQUIRE(key);
  UserCertificateSigner signer(std::move(*key));
  CHECK(signer.ca_public_line() ==
        std::string(kCaPub).substr(0, std::string(kCaPub).rfind(' ')) + " castgate-user-ca");
  auto line = ssh::parse_public_key(kCaPub);
  REQUIRE(line);
  CHECK(ssh::fingerprint_sha256(line->blob) ==
        "SHA256:W0nn8m1Gw/Vq2h7KkImTEcXf+4wMQ9ULAvZhXCp9wXI");
  CHECK(line->comment == "test-ca");
}

TEST_CASE("private key parser rejects what it cannot use") {
  auto garbage = ssh::parse_openssh_ed25519_private_key("garbage");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().code == ssh::KeyError::kUnknownFormat);
  CHECK(garbage.error().detail == "not an OpenSSH private key");
  std::string truncated = kCaKey;
  truncated.erase(120, 80);
  CHECK_FALSE(ssh::parse_openssh_ed25519_private_key(truncated));
}

TEST_CASE("user certificates carry the request and a valid CA signature") {
  auto seed = ssh::parse_openssh_ed25519_private_key(kCaKey);
  REQUIRE(seed);
  UserCertificateSigner signer(*Ed25519PrivateKey::from_seed(*seed));
  auto user = Ed25519PrivateKey::generate();
  ssh::WireWriter w;
  w.string("ssh-ed25519");
  w.string(user.public_key_raw());
  UserCertificateRequest req;
  req.public_key_blob = w.data();
  req.serial = 42;
  req.key_id = "castgate session=abc identity=alice";
  req.principals = {"ubuntu"};
  auto now = std::chrono::system_clock::now();
  req.valid_after = now - std::chrono::seconds(60);
  req.valid_before = now + std::chrono::seconds(300);
  req.extensions = {"permit-pty", "permit-port-forwarding"};
  req.critical_options = {{"source-address", "127.0.0.1"}};
  auto signed_cert = signer.sign(req);
  REQUIRE(signed_cert);
  std::string cert = *signed_cert;
  auto parsed_cert = parse_certificate(cert);
  REQUIRE(parsed_cert);
  const ParsedCertificate& parsed = *parsed_cert;
  CHECK(parsed.serial == 42);
  CHECK(parsed.cert_type == 1);
  CHECK(parsed.key_id == req.key_id);
  CHECK(parsed.principals == std::vector<std::string>{"ubuntu"});
  CHECK(parsed.public_key_blob == req.public_key_blob);
  CHECK(parsed.valid_before == static_cast<uint64_t>(unix_seconds(req.valid_before)));
  REQUIRE(parsed.extensions.size() == 2);
  CHECK(parsed.extensions[0].first == "permit-port-forwarding");  // sorted by name
  CHECK(parsed.critical_options[0].second == "127.0.0.1");
  CHECK(parsed.signature_key == signer.ca_public_blob());
  CHECK(verify_certificate_signature(parsed));
  cert[100] ^= 1;
  if (auto tampered = parse_certificate(cert)) CHECK_FALSE(verify_certificate_signature(*tampered));
  // Truncations never read past the end.
  for (size_t n = 0; n < cert.size(); n += 7)
    CHECK_FALSE(parse_certificate(std::string_view(cert).substr(0, n)));
  auto short_one = parse_certificate(std::string_view(cert).substr(0, 3));
  REQUIRE_FALSE(short_one);
  CHECK(short_one.error().code == CertificateError::kTruncated);
  CHECK(short_one.error().detail == "truncated certificate");
}
