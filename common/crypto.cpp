#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>

#include "common/encoding.h"

namespace castgate {

Sha256Digest sha256(std::string_view data) {
  Sha256Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

std::string sha256_hex(std::string_view data) {
  auto d = sha256(data);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

void Sha256::update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) std::abort();
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), d.data(), &len) != 1 || len != d.size()) std::abort();
  return d;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::fputs("castgate: the system random number generator failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string random_id(size_t bytes) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string raw = random_bytes(bytes);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;
}

void secure_zero(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Ed25519PrivateKey Ed25519PrivateKey::generate() {
  std::string seed = random_bytes(32);
  auto key = from_seed(seed);
  secure_zero(seed);
  if (!key) std::abort();
  return std::move(*key);
}

std::optional<Ed25519PrivateKey> Ed25519PrivateKey::from_seed(std::string_view seed32) {
  if (seed32.size() != 32) return std::nullopt;
  ossl::Pkey key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed32.data()), 32));
  if (!key) return std::nullopt;
  return Ed25519PrivateKey(std::move(key));
}

std::optional<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(std::string_view pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::nullopt;
  ossl::Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) return std::nullopt;
  return Ed25519PrivateKey(std::move(key));
}

std::string Ed25519PrivateKey::public_key_raw() const {
  std::string out(32, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(out.data()), &len) !=
          1 ||
      len != 32)
    std::abort();
  return out;
}

std::string Ed25519PrivateKey::sign(std::string_view message) const {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != 64)
    std::abort();
  return sig;
}

bool ed25519_verify(std::string_view public_key_raw, std::string_view message,
                    std::string_view signature) {
  if (public_key_raw.size() != 32 || signature.size() != 64) return false;
  ossl::Pkey key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key_raw.data()),
      32));
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

std::optional<std::string> ecdsa_signature_der(ossl::Bn r, ossl::Bn s) {
  if (!r || !s) return std::nullopt;
  ossl::EcdsaSig sig(ECDSA_SIG_new());
  if (!sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();  // owned by sig now
  (void)s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  ossl::Bytes owned(der);
  if (len <= 0) return std::nullopt;
  return std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len));
}

}  // namespace castgate
