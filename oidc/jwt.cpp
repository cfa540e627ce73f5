#include "oidc/jwt.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <algorithm>

#include "common/crypto.h"
#include "common/encoding.h"

namespace castgate::oidc {

using nlohmann::json;

std::string_view to_string(TokenError e) {
  switch (e) {
    case TokenError::kNone:
      return "ok";
    case TokenError::kMalformed:
      return "malformed";
    case TokenError::kAlgorithmNone:
      return "alg_none";
    case TokenError::kAlgorithmNotAllowed:
      return "alg_not_allowed";
    case TokenError::kUnknownKey:
      return "unknown_key";
    case TokenError::kKeyTypeMismatch:
      return "key_type_mismatch";
    case TokenError::kBadSignature:
      return "bad_signature";
    case TokenError::kIssuerMismatch:
      return "issuer_mismatch";
    case TokenError::kAudienceMismatch:
      return "audience_mismatch";
    case TokenError::kAuthorizedPartyMismatch:
      return "azp_mismatch";
    case TokenError::kExpired:
      return "expired";
    case TokenError::kNotYetValid:
      return "not_yet_valid";
    case TokenError::kIssuedInFuture:
      return "issued_in_future";
    case TokenError::kTooOld:
      return "too_old";
    case TokenError::kMissingClaim:
      return "missing_claim";
    case TokenError::kCriticalHeader:
      return "critical_header";
  }
  return "unknown";
}

std::string user_message(TokenError e) {
  switch (e) {
    case TokenError::kExpired:
    case TokenError::kTooOld:
      return "the sign-in token has expired; please sign in again";
    case TokenError::kNotYetValid:
    case TokenError::kIssuedInFuture:
      return "the sign-in token is not valid yet (are the clocks in sync?)";
    case TokenError::kIssuerMismatch:
    case TokenError::kAudienceMismatch:
    case TokenError::kAuthorizedPartyMismatch:
      return "the sign-in token was not issued for this gateway";
    default:
      return "the sign-in token was rejected as invalid";
  }
}

namespace {

constexpr int64_t kLatestNumericDate = 253402300799;  // 9999-12-31T23:59:59Z

std::optional<std::string> b64(const json& j, const char* member) {
  if (!j.contains(member) || !j[member].is_string()) return std::nullopt;
  return base64url_decode(j[member].get<std::string>());
}

ossl::Pkey key_from_params(const char* type, OSSL_PARAM* params) {
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return nullptr;
  return ossl::Pkey(pkey);
}

}  // namespace

std::string_view to_string(JwkError e) {
  switch (e) {
    case JwkError::kNoKeyType:
      return "no key type";
    case JwkError::kNotForSignatures:
      return "not for signatures";
    case JwkError::kWeakKey:
      return "weak key";
    case JwkError::kBadKey:
      return "bad key";
    case JwkError::kUnsupportedCurve:
      return "unsupported curve";
    case JwkError::kUnsupportedType:
      return "unsupported key type";
    case JwkError::kNotAKeySet:
      return "not a key set";
    case JwkError::kNoUsableKey:
      return "no usable key";
  }
  return "unknown";
}

Result<Jwk, Error<JwkError>> Jwk::parse(const json& j) {
  if (!j.is_object() || !j.contains("kty") || !j["kty"].is_string()) {
    return fail(JwkError::kNoKeyType, "key without kty");
  }
  Jwk k;
  k.kty_ = j["kty"].get<std::string>();
  if (j.contains("kid") && j["kid"].is_string()) k.kid_ = j["kid"].get<std::string>();
  if (j.contains("alg") && j["alg"].is_string()) k.alg_ = j["alg"].get<std::string>();
  if (j.contains("use") && j["use"].is_string() && j["use"] != "sig") {
    return fail(JwkError::kNotForSignatures, "key not for signatures");
  }
  ossl::Pkey pkey;
  if (k.kty_ == "RSA") {
    auto n = b64(j, "n"), e = b64(j, "e");
    if (!n || !e || n->size() < 256) {
      return fail(JwkError::kWeakKey, "RSA key missing or under 2048 bits");
    }
    ossl::Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                            static_cast<int>(n->size()), nullptr));
    ossl::Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                            static_cast<int>(e->size()), nullptr));
    ossl::ParamBld bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
      return fail(JwkError::kBadKey, "bad RSA key");
    }
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    pkey = key_from_params("RSA", params.get());
  } else if (k.kty_ == "EC") {
    auto x = b64(j, "x"), y = b64(j, "y");
    if (!j.contains("crv") || j["crv"] != "P-256" || !x || !y || x->size() != 32 ||
        y->size() != 32) {
      return fail(JwkError::kUnsupportedCurve, "only EC keys on P-256 are supported");
    }
    std::string point = "\x04" + *x + *y;
    ossl::ParamBld bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size())) {
      return fail(JwkError::kBadKey, "bad EC key");
    }
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    pkey = key_from_params("EC", params.get());
  } else if (k.kty_ == "OKP") {
    auto x = b64(j, "x");
    if (!j.contains("crv") || j["crv"] != "Ed25519" || !x || x->size() != 32) {
      return fail(JwkError::kUnsupportedCurve, "only OKP keys on Ed25519 are supported");
    }
    pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                           reinterpret_cast<const unsigned char*>(x->data()), 32));
  } else {
    return fail(JwkError::kUnsupportedType,
                "key type " + k.kty_ + " is not accepted");  // "oct" (HMAC secrets) above all
  }
  if (!pkey) {
    return fail(JwkError::kBadKey, "invalid " + k.kty_ + " key");
  }
  k.key_ = std::shared_ptr<EVP_PKEY>(std::move(pkey));
  return k;
}

Result<JwkSet, Error<JwkError>> JwkSet::parse(std::string_view json_text) {
  JwkSet set;
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return fail(JwkError::kNotAKeySet, "not a JWK set");
  for (auto& k : doc["keys"])
    if (auto jwk = Jwk::parse(k)) set.keys_.push_back(std::move(*jwk));
  if (set.keys_.empty())
    return fail(JwkError::kNoUsableKey, "the JWK set holds no usable signing key");
  return set;
}

const Jwk* JwkSet::find(const std::string& kid) const {
  if (kid.empty()) return keys_.size() == 1 ? &keys_[0] : nullptr;
  for (const auto& k : keys_)
    if (k.kid() == kid) return &k;
  return nullptr;
}

std::string Jwt::alg() const {
  return header.contains("alg") && header["alg"].is_string() ? header["alg"].get<std::string>()
                                                             : "";
}

std::string Jwt::kid() const {
  return header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>()
                                                             : "";
}

bool looks_like_jwt(std::string_view text) {
  if (text.size() < 10 || text.size() > 64 * 1024) return false;
  int dots = 0;
  for (char c : text) {
    if (c == '.') {
      ++dots;
    } else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return false;
    }
  }
  return dots == 2;
}

Result<Jwt, TokenError> parse_jwt(std::string_view token) {
  if (!looks_like_jwt(token)) return fail(TokenError::kMalformed);
  size_t d1 = token.find('.'), d2 = token.find('.', d1 + 1);
  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig) return fail(TokenError::kMalformed);
  Jwt jwt;
  jwt.header = json::parse(*header, nullptr, false);
  jwt.claims = json::parse(*payload, nullptr, false);
  if (jwt.header.is_discarded() || !jwt.header.is_object() || jwt.claims.is_discarded() ||
      !jwt.claims.is_object())
    return fail(TokenError::kMalformed);
  jwt.signing_input = std::string(token.substr(0, d2));
  jwt.signature = std::move(*sig);
  return jwt;
}

bool verify_jws(std::string_view alg, EVP_PKEY* key, std::string_view input,
                std::string_view signature) {
  const EVP_MD* md = nullptr;
  std::string sig(signature);
  if (alg == "RS256" || alg == "PS256") {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) return false;
    md = EVP_sha256();
  } else if (alg == "ES256") {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || signature.size() != 64) return false;
    md = EVP_sha256();
    // JWS carries r || s; OpenSSL wants DER.
    const auto* rs = reinterpret_cast<const unsigned char*>(signature.data());
    auto encoded = ecdsa_signature_der(ossl::Bn(BN_bin2bn(rs, 32, nullptr)),
                                       ossl::Bn(BN_bin2bn(rs + 32, 32, nullptr)));
    if (!encoded) return false;
    sig = std::move(*encoded);
  } else if (alg == "EdDSA") {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) return false;
  } else {
    return false;
  }
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) return false;
  if (alg == "PS256" && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

TokenError verify_signature(const Jwt& jwt, const JwkSet& keys,
                            const std::vector<std::string>& algorithms) {
  std::string alg = jwt.alg();
  if (alg.empty()) return TokenError::kMalformed;
  std::string lower = alg;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "none") return TokenError::kAlgorithmNone;
  if (std::find(algorithms.begin(), algorithms.end(), alg) == algorithms.end() ||
      alg.rfind("HS", 0) == 0)
    return TokenError::kAlgorithmNotAllowed;
  if (jwt.header.contains("crit")) return TokenError::kCriticalHeader;
  const Jwk* key = keys.find(jwt.kid());
  if (!key) return TokenError::kUnknownKey;
  if (!key->alg().empty() && key->alg() != alg) return TokenError::kKeyTypeMismatch;
  bool type_ok = ((alg == "RS256" || alg == "PS256") && key->kty() == "RSA") ||
                 (alg == "ES256" && key->kty() == "EC") || (alg == "EdDSA" && key->kty() == "OKP");
  if (!type_ok) return TokenError::kKeyTypeMismatch;
  return verify_jws(alg, key->key(), jwt.signing_input, jwt.signature) ? TokenError::kNone
                                                                       : TokenError::kBadSignature;
}

std::optional<int64_t> numeric_date(const json& claims, const char* name) {
  if (!claims.is_object() || !claims.contains(name) || !claims[name].is_number())
    return std::nullopt;
  // Every number, integer or not, read as a double: exact across the accepted range (below 2^53),
  // and compared before converting, since casting an out-of-range double is undefined.
  double d = claims[name].get<double>();
  if (!(d >= 0 && d <= static_cast<double>(kLatestNumericDate))) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::chrono::system_clock::time_point expiry(const Jwt& jwt) {
  return std::chrono::system_clock::time_point(
      std::chrono::seconds(numeric_date(jwt.claims, "exp").value_or(0)));
}

TokenError check_claims(const Jwt& jwt, const ValidationRules& rules,
                        std::chrono::system_clock::time_point now) {
  const json& c = jwt.claims;
  bool bad_date = false;
  auto number = [&](const char* name) {
    auto d = numeric_date(c, name);
    bad_date = bad_date || (c.contains(name) && !d);
    return d;
  };
  if (!c.contains("iss") || !c["iss"].is_string() || c["iss"].get<std::string>() != rules.issuer)
    return TokenError::kIssuerMismatch;
  bool aud_ok = false;
  if (c.contains("aud")) {
    auto matches = [&](const json& a) {
      return a.is_string() && std::find(rules.audiences.begin(), rules.audiences.end(),
                                        a.get<std::string>()) != rules.audiences.end();
    };
    if (c["aud"].is_array()) {
      for (auto& a : c["aud"]) aud_ok = aud_ok || matches(a);
    } else {
      aud_ok = matches(c["aud"]);
    }
  }
  if (!aud_ok) return TokenError::kAudienceMismatch;
  if (c.contains("azp") && !rules.authorized_party.empty() &&
      (!c["azp"].is_string() || c["azp"].get<std::string>() != rules.authorized_party))
    return TokenError::kAuthorizedPartyMismatch;
  int64_t t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  int64_t skew = rules.clock_skew.count();
  auto exp = number("exp");
  auto nbf = number("nbf");
  auto iat = number("iat");
  if (bad_date) return TokenError::kMalformed;  // a time that is not a sane NumericDate
  if (!exp) return TokenError::kMissingClaim;
  if (t >= *exp + skew) return TokenError::kExpired;
  if (nbf && t + skew < *nbf) return TokenError::kNotYetValid;
  if (!iat && rules.require_iat) return TokenError::kMissingClaim;
  if (iat && *iat > t + skew) return TokenError::kIssuedInFuture;
  if (iat && rules.max_age.count() > 0 && t - *iat > rules.max_age.count() + skew)
    return TokenError::kTooOld;
  if (!c.contains("sub") || !c["sub"].is_string() || c["sub"].get<std::string>().empty())
    return TokenError::kMissingClaim;
  return TokenError::kNone;
}

}  // namespace castgate::oidc
