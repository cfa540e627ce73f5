#include <doctest/doctest.h>

#include "common/crypto.h"
#include "common/encoding.h"
#include "gateway/identity_keys.h"
#include "gateway/presented_certificate.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"

using namespace castgate;

TEST_CASE("user certificates from a trusted CA name a workload; others are refused") {
  auto ca_key = Ed25519PrivateKey::generate();
  UserCertificateSigner ca(Ed25519PrivateKey::from_seed(std::string(32, 'c')).value());
  std::string ca_line = ca.ca_public_line();
  auto ids = IdentityKeys::parse(
      "cert-authority,name=\"ci-ca\",kind=workload,groups=\"ci\" " + ca_line, "ids");
  auto user = Ed25519PrivateKey::generate();
  ssh::WireWriter w;
  w.string("ssh-ed25519");
  w.string(user.public_key_raw());
  auto now = std::chrono::system_clock::now();
  UserCertificateRequest req;
  req.public_key_blob = w.data();
  req.key_id = "deploy-pipeline";
  req.principals = {"deploy"};
  req.valid_after = now - std::chrono::seconds(60);
  req.valid_before = now + std::chrono::seconds(600);
  req.critical_options = {{"source-address", "10.0.0.0/8,127.0.0.1"}};
  auto check = check_presented_certificate(ca.sign(req).value(), ids, now, "127.0.0.1");
  REQUIRE(check.has_value());
  CHECK(check->identity.name == "deploy-pipeline");
  CHECK(check->identity.kind == IdentityKind::kWorkload);
  CHECK(check->identity.groups == std::vector<std::string>{"ci"});
  CHECK(check->principals == std::vector<std::string>{"deploy"});
  CHECK_FALSE(
      check_presented_certificate(ca.sign(req).value(), ids, now, "192.168.1.1").has_value());
  CHECK(check_presented_certificate(ca.sign(req).value(), ids, now + std::chrono::hours(1),
                                    "127.0.0.1")
            .error()
            .detail.find("not valid now") != std::string::npos);
  auto forced = req;
  forced.critical_options.emplace_back("force-command", "/bin/true");
  CHECK_FALSE(
      check_presented_certificate(ca.sign(forced).value(), ids, now, "127.0.0.1").has_value());
  UserCertificateSigner rogue(std::move(ca_key));
  CHECK(check_presented_certificate(rogue.sign(req).value(), ids, now, "127.0.0.1")
            .error()
            .detail.find("untrusted CA") != std::string::npos);
  CHECK(address_in_list("10.1.2.3", "10.0.0.0/8"));
  CHECK_FALSE(address_in_list("11.1.2.3", "10.0.0.0/8"));
  CHECK(address_in_list("::1", "::1/128"));
  CHECK_FALSE(address_in_list("garbage", "10.0.0.0/8"));
}
