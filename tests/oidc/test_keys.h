// Signing keys and signed tokens of the kind an identity provider makes, for the OIDC tests.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/encoding.h"
#include "common/openssl_handles.h"

namespace castgate::oidc_test {

using nlohmann::json;

// A signing key of the kind a provider has, and its public JWK.
struct TestKey {
  ossl::Pkey key;
  json jwk;
  std::string alg;
};

inline std::string bn_b64(const BIGNUM* bn) {
  std::string s(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(s.data()));
  return base64url_encode(s);
}

inline TestKey make_key(const std::string& alg, const std::string& kid) {
  TestKey k;
  k.alg = alg;
  EVP_PKEY* p = nullptr;
  if (alg == "RS256" || alg == "PS256") {
    p = EVP_RSA_gen(2048);
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_E, &e);
    k.jwk = {{"kty", "RSA"}, {"n", bn_b64(n)}, {"e", bn_b64(e)}};
    BN_free(n);
    BN_free(e);
  } else if (alg == "ES256") {
    p = EVP_EC_gen("P-256");
    unsigned char pub[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(p, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len);
    k.jwk = {{"kty", "EC"},
             {"crv", "P-256"},
             {"x", base64url_encode(std::string(reinterpret_cast<char*>(pub) + 1, 32))},
             {"y", base64url_encode(std::string(reinterpret_cast<char*>(pub) + 33, 32))}};
  } else {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_keygen(ctx, &p);
    EVP_PKEY_CTX_free(ctx);
    unsigned char pub[32];
    size_t len = 32;
    EVP_PKEY_get_raw_public_key(p, pub, &len);
    k.jwk = {{"kty", "OKP"},
             {"crv", "Ed25519"},
             {"x", base64url_encode(std::string(reinterpret_cast<char*>(pub), 32))}};
  }
  k.key.reset(p);
  k.jwk["kid"] = kid;
  k.jwk["use"] = "sig";
  return k;
}

inline std::string sign(const TestKey& k, const json& header, const json& claims) {
  std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  const EVP_MD* md = k.alg == "EdDSA" ? nullptr : EVP_sha256();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, md, nullptr, k.key.get());
  if (k.alg == "PS256") {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (k.alg == "ES256") {  // DER -> r || s
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    std::string raw(64, '\0');
    BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    sig = raw;
  }
  return input + "." + base64url_encode(sig);
}

}  // namespace castgate::oidc_test
