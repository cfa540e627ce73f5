#include "oidc/jwt.h"

#include <doctest/doctest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include "common/crypto.h"
#include "common/encoding.h"
#include "oidc/claims.h"
#include "oidc/config.h"
#include "oidc/idp_messages.h"
#include "tests/oidc/test_keys.h"

using namespace castgate;
using namespace castgate::oidc;
using nlohmann::json;
using namespace castgate::oidc_test;

namespace {

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));

json good_claims() {
  return {{"iss", "https://idp.example.com"}, {"aud", "castgate"},       {"sub", "alice"},
          {"iat", 1800000000 - 10},           {"exp", 1800000000 + 600}, {"nbf", 1800000000 - 10}};
}

ValidationRules rules() {
  ValidationRules r;
  r.algorithms = {"RS256", "PS256", "ES256", "EdDSA"};
  r.issuer = "https://idp.example.com";
  r.audiences = {"castgate"};
  r.authorized_party = "castgate";
  r.max_age = std::chrono::seconds(3600);
  return r;
}

TokenError validate(const std::string& token, const JwkSet& keys, const ValidationRules& r) {
  auto jwt = parse_jwt(token);
  if (!jwt) return jwt.error();
  TokenError e = verify_signature(*jwt, keys, r.algorithms);
  if (e != TokenError::kNone) return e;
  return check_claims(*jwt, r, kNow);
}

}  // namespace

TEST_CASE("tokens signed with each allowed algorithm validate") {
  for (std::string alg : {"RS256", "PS256", "ES256", "EdDSA"}) {
    auto k = make_key(alg, "k-" + alg);
    auto parsed = JwkSet::parse(json{{"keys", {k.jwk}}}.dump());
    REQUIRE(parsed);
    const JwkSet& keys = *parsed;
    REQUIRE(keys.size() == 1);
    std::string token =
        sign(k, {{"alg", alg}, {"kid", k.jwk["kid"]}, {"typ", "JWT"}}, good_claims());
    CHECK_MESSAGE(validate(token, keys, rules()) == TokenError::kNone, alg);
  }
}

TEST_CASE("every way a token can be wrong is rejected with its reason") {
  auto rsa = make_key("RS256", "rsa1");
  auto ec = make_key("ES256", "ec1");
  auto keys = JwkSet::parse(json{{"keys", {rsa.jwk, ec.jwk}}}.dump()).value();
  json h = {{"alg", "RS256"}, {"kid", "rsa1"}};
  auto r = rules();
  auto with = [&](const char* k, json v) {
    json c = good_claims();
    if (v.is_null())
      c.erase(k);
    else
      c[k] = v;
    return sign(rsa, h, c);
  };
  CHECK(validate(sign(rsa, h, good_claims()), keys, r) == TokenError::kNone);
  // alg none: an unsigned token.
  std::string none =
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(good_claims().dump()) + ".";
  CHECK(validate(none, keys, r) == TokenError::kAlgorithmNone);
  // HS256 keyed with the public key must never be accepted.
  std::string hs = base64url_encode(R"({"alg":"HS256","kid":"rsa1"})") + "." +
                   base64url_encode(good_claims().dump()) + "." + base64url_encode("mac");
  CHECK(validate(hs, keys, r) == TokenError::kAlgorithmNotAllowed);
  auto rs_only = r;
  rs_only.algorithms = {"RS256"};
  CHECK(validate(sign(ec, {{"alg", "ES256"}, {"kid", "ec1"}}, good_claims()), keys, rs_only) ==
        TokenError::kAlgorithmNotAllowed);
  // An RS256 header pointing at the EC key.
  CHECK(validate(sign(rsa, {{"alg", "RS256"}, {"kid", "ec1"}}, good_claims()), keys, r) ==
        TokenError::kKeyTypeMismatch);
  CHECK(validate(sign(rsa, {{"alg", "RS256"}, {"kid", "nope"}}, good_claims()), keys, r) ==
        TokenError::kUnknownKey);
  std::string t = sign(rsa, h, good_claims());
  t[t.size() - 5] = t[t.size() - 5] == 'A' ? 'B' : 'A';
  CHECK(validate(t, keys, r) == TokenError::kBadSignature);
  std::string body = sign(rsa, h, good_claims());
  auto d1 = body.find('.'), d2 = body.find('.', d1 + 1);
  json evil = good_claims();
  evil["sub"] = "mallory";
  std::string swapped = body.substr(0, d1 + 1) + base64url_encode(evil.dump()) + body.substr(d2);
  CHECK(validate(swapped, keys, r) == TokenError::kBadSignature);
  CHECK(validate(with("iss", "https://evil.example.com"), keys, r) == TokenError::kIssuerMismatch);
  CHECK(validate(with("aud", "other"), keys, r) == TokenError::kAudienceMismatch);
  CHECK(validate(with("aud", json::array({"other", "castgate"})), keys, r) == TokenError::kNone);
  CHECK(validate(with("azp", "other"), keys, r) == TokenError::kAuthorizedPartyMismatch);
  CHECK(validate(with("exp", 1800000000 - 120), keys, r) == TokenError::kExpired);
  CHECK(validate(with("exp", 1800000000 - 30), keys, r) == TokenError::kNone);  // within skew
  CHECK(validate(with("nbf", 1800000000 + 600), keys, r) == TokenError::kNotYetValid);
  CHECK(validate(with("iat", 1800000000 + 600), keys, r) == TokenError::kIssuedInFuture);
  CHECK(validate(with("iat", 1800000000 - 7200), keys, r) == TokenError::kTooOld);
  CHECK(validate(with("exp", nullptr), keys, r) == TokenError::kMissingClaim);
  // Times that are not sane NumericDates are malformed, never cast (1e300 overflows int64).
  CHECK(validate(with("exp", 1e300), keys, r) == TokenError::kMalformed);
  CHECK(validate(with("exp", json::number_unsigned_t{18446744073709551615ULL}), keys, r) ==
        TokenError::kMalformed);
  CHECK(validate(with("exp", -1), keys, r) == TokenError::kMalformed);
  CHECK(validate(with("exp", "1800003600"), keys, r) == TokenError::kMalformed);
  CHECK(validate(with("nbf", -1e300), keys, r) == TokenError::kMalformed);
  CHECK(validate(with("iat", 9.3e18), keys, r) == TokenError::kMalformed);
  CHECK(validate(with("exp", 1800003600.75), keys, r) == TokenError::kNone);
  CHECK(numeric_date(json{{"exp", 253402300799}}, "exp") == 253402300799);
  CHECK_FALSE(numeric_date(json{{"exp", 253402300800}}, "exp"));
  CHECK(validate(with("sub", nullptr), keys, r) == TokenError::kMissingClaim);
  CHECK(validate(sign(rsa, {{"alg", "RS256"}, {"kid", "rsa1"}, {"crit", {"exp"}}}, good_claims()),
                 keys, r) == TokenError::kCriticalHeader);
  for (const char* bad : {"", "a.b", "a.b.c.d.e", "!!!.???.###", "e30.e30", "bm90IGpzb24.e30.e30"})
    CHECK(validate(bad, keys, r) == TokenError::kMalformed);
}

TEST_CASE("key sets refuse symmetric and weak keys") {
  auto set = JwkSet::parse(R"({"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]})");
  REQUIRE_FALSE(set);
  CHECK(set.error().code == JwkError::kNoUsableKey);
  CHECK(set.error().detail == "the JWK set holds no usable signing key");
  set = JwkSet::parse(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"weak"}]})");
  CHECK_FALSE(set);
  auto not_json = JwkSet::parse("not json");
  REQUIRE_FALSE(not_json);
  CHECK(not_json.error().code == JwkError::kNotAKeySet);
  auto oct = Jwk::parse(json{{"kty", "oct"}, {"k", "c2VjcmV0"}});
  REQUIRE_FALSE(oct);
  CHECK(oct.error().code == JwkError::kUnsupportedType);
  CHECK(oct.error().detail == "key type oct is not accepted");
  auto weak = Jwk::parse(json{{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}});
  REQUIRE_FALSE(weak);
  CHECK(weak.error().code == JwkError::kWeakKey);
}

TEST_CASE("claims map to identities per preset") {
  ProviderConfig okta;
  okta.preset = Preset::kOkta;
  okta.issuer = "https://acme.okta.com/oauth2/default";
  auto m = map_person(okta, {{"sub", "00u1"},
                             {"preferred_username", "alice@acme.com"},
                             {"email", "alice@acme.com"},
                             {"groups", {"ops", "dba"}}});
  REQUIRE(m.has_value());
  CHECK(m->subject == "oidc:00u1");  // qualified: never a registered key's name
  CHECK(m->assigned_name.empty());   // the display name grants nothing
  CHECK(m->name == "alice@acme.com");
  CHECK_FALSE(m->email_verified);  // no email_verified claim
  m = map_person(okta, {{"sub", "00u1"}, {"email", "alice@acme.com"}, {"email_verified", true}});
  CHECK(m->email_verified);
  m = map_person(okta, {{"sub", "00u1"}, {"email", "alice@acme.com"}, {"email_verified", "true"}});
  CHECK_FALSE(m->email_verified);  // only the boolean counts
  m = map_person(okta, {{"sub", "00u1"}, {"groups", {"ops", "dba"}}});
  CHECK(m->groups == std::vector<std::string>{"ops", "dba"});
  CHECK(m->kind == IdentityKind::kHuman);

  auto cfg =
      OidcConfig::parse(R"({"provider":{"preset":"entra","tenant":"t-1","client_id":"c"}})", "x");
  const auto& entra = *cfg.provider;
  CHECK(entra.issuer == "https://login.microsoftonline.com/t-1/v2.0");
  m = map_person(entra, {{"tid", "t-1"},
                         {"oid", "o-9"},
                         {"preferred_username", "bob@contoso.com"},
                         {"groups", {"g1"}}});
  REQUIRE(m.has_value());
  CHECK(m->subject == "oidc:t-1:o-9");
  CHECK(m->email == "bob@contoso.com");  // the UPN, for people to read
  CHECK_FALSE(m->email_verified);        // ... and never trusted
  m = map_person(
      entra, {{"tid", "t-1"}, {"oid", "o-9"}, {"email", "bob@contoso.com"}, {"xms_edov", true}});
  CHECK(m->email_verified);
  m = map_person(entra, {{"tid", "t-1"},
                         {"oid", "o-9"},
                         {"_claim_names", {{"groups", "src1"}}},
                         {"_claim_sources", {{"src1", {{"endpoint", "https://graph"}}}}}});
  CHECK_FALSE(m.has_value());
  CHECK(m.error().code == MappingError::kGroupsOverage);
  CHECK(to_string(m.error().code) == "groups_overage");
  CHECK(m.error().detail.find("too many groups") != std::string::npos);
  m = map_person(entra, {{"tid", "t-1"}});
  CHECK_FALSE(m.has_value());
  CHECK(to_string(m.error().code) == "missing_subject");
}

TEST_CASE("OIDC configuration errors name the setting") {
  CHECK_THROWS_WITH(OidcConfig::parse(R"({"provider":{"preset":"okta","client_id":"c"}})", "f"),
                    "f: provider: issuer is required");
  CHECK_THROWS(OidcConfig::parse(
      R"({"provider":{"issuer":"https://x","client_id":"c","algorithms":["HS256"]}})", "f"));
  CHECK_THROWS(
      OidcConfig::parse(R"({"provider":{"issuer":"https://x","client_id":"c"},"typo":1})", "f"));
  CHECK_THROWS(
      OidcConfig::parse(R"({"workload_issuers":[{"name":"gh","issuer":"https://t"}]})", "f"));
  auto c = OidcConfig::parse(
      R"({"workload_issuers":[{"name":"gh","issuer":"https://t","audience":"castgate",
      "rules":[{"subject":"repo:acme/*","identity":"ci","groups":["ci"]}]}]})",
      "f");
  auto w = map_workload(c.workload_issuers[0], {{"sub", "repo:acme/deploy:ref:refs/heads/main"}});
  REQUIRE(w.has_value());
  CHECK(w->name == "ci");
  CHECK(w->kind == IdentityKind::kWorkload);
  CHECK_FALSE(map_workload(c.workload_issuers[0], {{"sub", "repo:evil/x"}}).has_value());
}

TEST_CASE("the identity provider's answers are read strictly") {
  auto d = parse_discovery(
      R"({"issuer":"https://idp","jwks_uri":"https://idp/jwks","token_endpoint":"https://idp/t",
          "device_authorization_endpoint":"https://idp/d"})",
      "https://idp");
  REQUIRE(d);
  CHECK(d->jwks_uri == "https://idp/jwks");
  CHECK(d->device_authorization_endpoint == "https://idp/d");
  auto evil =
      parse_discovery(R"({"issuer":"https://evil","jwks_uri":"https://idp/jwks"})", "https://idp");
  REQUIRE_FALSE(evil);
  CHECK(evil.error().code == IdpAnswerError::kIssuerMismatch);
  CHECK(evil.error().detail == "the discovery document names issuer https://evil, not https://idp");
  CHECK_FALSE(parse_discovery(R"({"issuer":"https://idp","jwks_uri":7})", "https://idp"));
  // An endpoint of the wrong type counts as absent: no device flow, said so at sign-in.
  d = parse_discovery(
      R"({"issuer":"https://idp","jwks_uri":"https://idp/j","token_endpoint":["x"]})",
      "https://idp");
  REQUIRE(d);
  CHECK(d->token_endpoint.empty());
  CHECK_FALSE(parse_discovery(
      R"({"issuer":"https://idp","jwks_uri":"https://idp/j","token_endpoint":"javascript:x"})",
      "https://idp"));
  CHECK_FALSE(parse_discovery("[1]", "https://idp"));
  CHECK_FALSE(parse_discovery("{\"issuer\": 1e99999}", "https://idp"));

  auto a = parse_device_authorization(
      R"({"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://idp/device",
          "expires_in":1e300,"interval":-5})");
  REQUIRE(a);
  CHECK(a->user_code == "WDJB-MJHT");
  CHECK(a->expires_in == std::chrono::seconds(3600));  // clamped, not cast
  CHECK(a->interval == std::chrono::seconds(1));
  CHECK(a->verification_uri_complete.empty());  // Entra sends none
  // Entra-style verification_url; a complete URL that is not a web URL is dropped.
  a = parse_device_authorization(
      R"({"device_code":"dc","user_code":"ABC","verification_url":"https://microsoft.com/devicelogin",
          "verification_uri_complete":"https://x/\u001b[2J"})");
  REQUIRE(a);
  CHECK(a->verification_uri == "https://microsoft.com/devicelogin");
  CHECK(a->verification_uri_complete.empty());
  CHECK(a->expires_in == std::chrono::seconds(600));
  CHECK(a->interval == std::chrono::seconds(5));
  // Nothing a provider sends may put control bytes on a user's terminal.
  auto pwned = parse_device_authorization(
      R"({"device_code":"dc","user_code":"\u001b]0;pwned\u0007","verification_uri":"https://i/d"})");
  REQUIRE_FALSE(pwned);
  CHECK(pwned.error().code == IdpAnswerError::kNoUserCode);
  CHECK(pwned.error().detail == "the device authorization answer has no printable user_code");
  CHECK_FALSE(parse_device_authorization(
      R"({"device_code":5,"user_code":"A","verification_uri":"https://i/d"})"));
  auto no_uri = parse_device_authorization(R"({"device_code":"d","user_code":"A"})");
  REQUIRE_FALSE(no_uri);
  CHECK(no_uri.error().detail == "the device authorization answer has no valid verification_uri");

  CHECK(oauth_error_code(R"({"error":"authorization_pending"})") == "authorization_pending");
  CHECK(oauth_error_code(R"({"error":5})").empty());
  CHECK(oauth_error_code("<html>").empty());
  CHECK(oauth_error_text(R"({"error":"access_denied","error_description":"no\nway"})") ==
        "access_denied: no\\x0away");
  CHECK(id_token_of(R"({"id_token":"a.b.c"})") == "a.b.c");
  CHECK_FALSE(id_token_of(R"({"id_token":{"a":1}})"));
  CHECK_FALSE(id_token_of("not json"));
}

TEST_CASE("multi-factor sign-ins as each provider spells them") {
  auto okta =
      *OidcConfig::parse(
           R"({"provider":{"preset":"okta","issuer":"https://acme.okta.com","client_id":"c"}})",
           "x")
           .provider;
  auto entra =
      *OidcConfig::parse(R"({"provider":{"preset":"entra","tenant":"t-1","client_id":"c"}})", "x")
           .provider;
  auto base = nlohmann::json{{"sub", "00u1"}, {"tid", "t-1"}, {"oid", "o-1"}};
  auto with = [&](nlohmann::json extra) {
    auto c = base;
    c.update(extra);
    return c;
  };
  CHECK_FALSE(map_person(okta, base)->mfa);  // nothing said: not multi-factor
  CHECK(map_person(okta, with({{"amr", {"pwd", "mfa", "otp"}}}))->mfa);
  CHECK_FALSE(map_person(okta, with({{"amr", {"pwd"}}}))->mfa);
  CHECK(map_person(okta, with({{"acr", "urn:okta:loa:2fa:any"}}))->mfa);
  CHECK(map_person(okta, with({{"acr", "phr"}}))->mfa);
  CHECK_FALSE(map_person(okta, with({{"acr", "urn:okta:loa:1fa:any"}}))->mfa);
  CHECK_FALSE(map_person(okta, with({{"amr", "mfa pwd"}}))->mfa);  // one odd value
  CHECK_FALSE(map_person(okta, with({{"amr", {{{"mfa", true}}}}}))->mfa);
  CHECK(map_person(entra, with({{"amr", {"pwd", "ngcmfa"}}}))->mfa);
  auto m = map_person(entra, with({{"amr", {"pwd", "rsa"}}, {"acr", "1"}}));
  CHECK_FALSE(m->mfa);
  CHECK(m->amr == std::vector<std::string>{"pwd", "rsa"});
  CHECK(m->acr == "1");
  // Values are recorded and shown to users: a few short printable ones only.
  m = map_person(okta, with({{"amr",
                              {"pwd", std::string(40, 'x'), "a b", "\x1b[2J", "otp", "1", "2", "3",
                               "4", "5", "6", "7"}}}));
  CHECK(m->amr == std::vector<std::string>{"pwd", "otp", "1", "2", "3", "4", "5", "6"});
  // Entra's v2.0 tokens carry no amr: the operator may say the provider enforces MFA for
  // castgate (Conditional Access).
  auto ca = *OidcConfig::parse(
                 R"({"provider":{"preset":"entra","tenant":"t-1","client_id":"c",
                                 "mfa":{"enforced_by_provider":true}}})",
                 "x")
                 .provider;
  CHECK(map_person(ca, base)->mfa);
  CHECK_THROWS_AS(OidcConfig::parse(R"({"provider":{"preset":"okta","issuer":"https://a",
                                        "client_id":"c","mfa":{"amrs":["mfa"]}}})",
                                    "x"),
                  std::runtime_error);
}
