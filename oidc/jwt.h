// JSON Web Tokens (JWS compact form) and keys (JWK), validated strictly: an allowlist of
// algorithms (never "none", never an HMAC), a key of the matching type, the signature, then
// issuer, audience, authorized party and times. Every rejection names its reason.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/openssl_handles.h"
#include "common/result.h"

namespace castgate::oidc {

enum class TokenError {
  kNone,
  kMalformed,            // not three base64url parts of JSON objects
  kAlgorithmNone,        // "alg": "none"
  kAlgorithmNotAllowed,  // HS256 or anything not on the allowlist
  kUnknownKey,           // no key with this kid (after refreshing the key set)
  kKeyTypeMismatch,      // e.g. an RS256 token and an EC key
  kBadSignature,
  kIssuerMismatch,
  kAudienceMismatch,
  kAuthorizedPartyMismatch,  // azp
  kExpired,
  kNotYetValid,  // nbf
  kIssuedInFuture,
  kTooOld,        // iat older than the maximum token age
  kMissingClaim,  // exp, iat, sub, ...
  kCriticalHeader,
};

std::string_view to_string(TokenError e);  // "expired", for audit events
std::string user_message(TokenError e);    // plain words for the user

// Why a key (set) is not used; the Error's detail says it in words for the log.
enum class JwkError {
  kNoKeyType,
  kNotForSignatures,  // "use" other than "sig"
  kWeakKey,           // RSA under 2048 bits, or missing its numbers
  kBadKey,            // numbers OpenSSL does not take
  kUnsupportedCurve,
  kUnsupportedType,  // "oct" (HMAC secrets) above all
  kNotAKeySet,
  kNoUsableKey,
};
std::string_view to_string(JwkError e);

class Jwk {
 public:
  // Parses one key of a JWKS; fails for keys castgate will not use (symmetric keys, unknown
  // curves, RSA under 2048 bits).
  static Result<Jwk, Error<JwkError>> parse(const nlohmann::json& j);
  const std::string& kid() const { return kid_; }
  const std::string& kty() const { return kty_; }
  const std::string& alg() const { return alg_; }  // may be empty
  EVP_PKEY* key() const { return key_.get(); }

 private:
  std::string kid_, kty_, alg_;
  std::shared_ptr<EVP_PKEY> key_;
};

class JwkSet {
 public:
  // The usable keys of a JWKS; fails unless there is one at least.
  static Result<JwkSet, Error<JwkError>> parse(std::string_view json_text);
  // By kid; without a kid only if the set holds exactly one usable key.
  const Jwk* find(const std::string& kid) const;
  size_t size() const { return keys_.size(); }

 private:
  std::vector<Jwk> keys_;
};

struct Jwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signing_input;  // base64url(header) "." base64url(payload)
  std::string signature;      // raw bytes
  std::string alg() const;
  std::string kid() const;
};

// Splits and decodes; does not verify anything. Fails with kMalformed.
Result<Jwt, TokenError> parse_jwt(std::string_view token);
// True if `text` has the shape of a JWS compact token (three base64url parts).
bool looks_like_jwt(std::string_view text);

struct ValidationRules {
  std::vector<std::string> algorithms = {"RS256"};  // allowlist: RS256, PS256, ES256, EdDSA
  std::string issuer;                               // exact match
  std::vector<std::string> audiences;               // aud must contain one of these
  std::string authorized_party;                     // if azp is present it must equal this
  std::chrono::seconds clock_skew{60};
  std::chrono::seconds max_age{0};  // 0 = no limit beyond exp
  bool require_iat = true;
};

// Checks the header and signature against `keys`.
TokenError verify_signature(const Jwt& jwt, const JwkSet& keys,
                            const std::vector<std::string>& algorithms);
// A time claim (exp, nbf, iat) as whole seconds since the epoch; nullopt when it is absent, not a
// number, negative, NaN or after the year 9999 (check_claims calls a present but invalid one
// malformed).
std::optional<int64_t> numeric_date(const nlohmann::json& claims, const char* name);
// The token's exp as a time point (the epoch if it has none); call after check_claims.
std::chrono::system_clock::time_point expiry(const Jwt& jwt);
// Checks the claims at time `now`.
TokenError check_claims(const Jwt& jwt, const ValidationRules& rules,
                        std::chrono::system_clock::time_point now);
bool verify_jws(std::string_view alg, EVP_PKEY* key, std::string_view input,
                std::string_view signature);

}  // namespace castgate::oidc
