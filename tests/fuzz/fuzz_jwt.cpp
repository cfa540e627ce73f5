// Tokens are untrusted: workloads present them at sign-in, providers return them. Each input is
// a token checked the way castgate checks one: parse, signature against a fixed key set (RSA,
// P-256, Ed25519; the seeds are validly signed), claims at a fixed time, then identity mapping
// for the okta, entra and generic presets and for a workload issuer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "oidc/claims.h"
#include "oidc/config.h"
#include "oidc/jwt.h"

namespace {
using namespace castgate::oidc;

const char kJwks[] =
    R"({"keys":[{"kty":"RSA","kid":"rsa1","n":"oZw9SbNN9uJumJozjmDZytVXGJWY9uf37u8h9VN1_nCRBbDdQdRCx4KTPsbg5wvjqVO2NHuzlmjiaeY0dj-oXy3qPm0wIPLqKr8jCNj0G6hQpJOiRHdR0mQVwax4yGBh1s3nbdSiuG0fzZVqAfjL7587INBJJKHj1TkQuVrRIjDF9KhFbssPWm5JImKnh1H5AjTnNAKUzgfh7yqGNoZVbndrcFNQ6HABQKdNvkdDTqnpPIt6lLSxvboe_JW24PZg4WVQpxBuaaBnDHtfXjuKQdRdhJ-7-hEzSegiYPswW4g5N2lZUH6Gp4bYGVJi962Jv5yWpHNzlGapr62nIuUL2w","e":"AQAB"},{"kty":"EC","kid":"ec1","crv":"P-256","x":"uOlrMDWqygSPkQ06Fg7ONwjGxjWQ1u9qSlybR5sg7Xg","y":"joQ2IvLrvL-WS2xtyo1GzQniG9KogNRcrr9ZWQv6ptI"},{"kty":"OKP","kid":"ed1","crv":"Ed25519","x":"PODZPmv7I3lKM_fOstfdY6WXKvXnRDO8TNGNov4D4Ac"}]})";

struct Fixture {
  JwkSet keys;
  ValidationRules rules;
  std::vector<ProviderConfig> providers;
  WorkloadIssuer workload;
  Fixture() {
    keys = JwkSet::parse(kJwks).value();
    rules.algorithms = {"RS256", "PS256", "ES256", "EdDSA"};
    rules.issuer = "https://idp.test";
    rules.audiences = {"castgate"};
    rules.authorized_party = "castgate";
    rules.max_age = std::chrono::hours(1);
    for (Preset p : {Preset::kGeneric, Preset::kOkta, Preset::kEntra}) {
      ProviderConfig c;
      c.preset = p;
      c.issuer = rules.issuer;
      c.client_id = "castgate";
      if (p == Preset::kEntra) c.claims.subject = "oid";
      providers.push_back(c);
    }
    workload.name = "gh";
    workload.issuer = "https://token.actions.githubusercontent.com";
    workload.audiences = {"castgate"};
    workload.rules = {{"repo:acme/*", "ci", {"ci"}}};
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture f;
  std::string_view token(reinterpret_cast<const char*>(data), size);
  looks_like_jwt(token);
  auto jwt = parse_jwt(token);
  if (!jwt) return 0;
  jwt->alg();
  jwt->kid();
  verify_signature(*jwt, f.keys, f.rules.algorithms);
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  check_claims(*jwt, f.rules, now);
  expiry(*jwt);
  for (const auto& p : f.providers) (void)map_person(p, jwt->claims);
  (void)map_workload(f.workload, jwt->claims);
  return 0;
}
