// What OpenSSH's sshd refuses in a user certificate, castgate refuses too, with a reason that
// names the problem.
#include <doctest/doctest.h>

#include "common/crypto.h"
#include "gateway/identity_keys.h"
#include "gateway/presented_certificate.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"

using namespace castgate;

namespace {

struct TestCa {
  UserCertificateSigner signer{Ed25519PrivateKey::from_seed(std::string(32, 'r')).value()};
  IdentityKeys identities = IdentityKeys::parse(
      "cert-authority,name=\"ci-ca\",kind=workload,groups=\"ops\" " + signer.ca_public_line(),
      "ids");
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();

  // A certificate for a fresh key, valid now for `principals`, with `critical_options`.
  std::string certify(std::vector<std::string> principals,
                      std::vector<std::pair<std::string, std::string>> critical_options = {}) {
    ssh::WireWriter key;
    key.string("ssh-ed25519");
    key.string(Ed25519PrivateKey::generate().public_key_raw());
    UserCertificateRequest req;
    req.public_key_blob = key.data();
    req.key_id = "bot";
    req.principals = std::move(principals);
    req.critical_options = std::move(critical_options);
    req.valid_after = now - std::chrono::minutes(1);
    req.valid_before = now + std::chrono::minutes(10);
    return signer.sign(req).value();
  }

  CertificateCheck check(const std::string& cert, const std::string& from = "127.0.0.1") {
    return check_presented_certificate(cert, identities, now, from);
  }
};

}  // namespace

TEST_CASE("a user certificate without principals is refused") {
  TestCa ca;
  auto none = ca.check(ca.certify({}));
  CHECK_FALSE(none.has_value());
  CHECK(none.error().detail.find("lacks a principal list") != std::string::npos);
  CHECK(ca.check(ca.certify({"deploy"})).has_value());
}

TEST_CASE("a malformed source-address refuses the certificate, naming the entry") {
  TestCa ca;
  auto bypass = ca.check(ca.certify({"deploy"}, {{"source-address", "10.0.0.0/abc"}}));
  CHECK_FALSE(bypass.has_value());
  CHECK(bypass.error().detail ==
        "the certificate's source-address is malformed (bad prefix length: \"10.0.0.0/abc\")");
  CHECK_FALSE(
      ca.check(ca.certify({"deploy"}, {{"source-address", "127.0.0.1,10.0.0.0/abc"}})).has_value());
  CHECK(ca.check(ca.certify({"deploy"}, {{"source-address", ""}}))
            .error()
            .detail.find("empty entry") != std::string::npos);
  CHECK(ca.check(ca.certify({"deploy"}, {{"source-address", "127.0.0.1/32"}})).has_value());
  CHECK(ca.check(ca.certify({"deploy"}, {{"source-address", "127.0.0.1/32"}}), "::ffff:127.0.0.1")
            .has_value());
  auto elsewhere = ca.check(ca.certify({"deploy"}, {{"source-address", "10.0.0.0/8"}}));
  CHECK_FALSE(elsewhere.has_value());
  CHECK(elsewhere.error().detail == "the certificate may not be used from 127.0.0.1");
}
