// Small, safe wrappers over OpenSSL for hashing, randomness and Ed25519.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/openssl_handles.h"

namespace castgate {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

// Incremental SHA-256 for hashing many pieces without concatenating them.
class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  Sha256Digest finish();

 private:
  ossl::MdCtx ctx_;
};

// Cryptographically secure random bytes; aborts the process if the CSPRNG fails (fail closed).
std::string random_bytes(size_t n);
// A random identifier: `bytes` random bytes in lower-case base32 (no padding), e.g. session ids.
std::string random_id(size_t bytes = 16);

// Zeroes memory holding secrets in a way the compiler will not optimise away.
void secure_zero(std::string& s);

// An Ed25519 private key. Only sign() and the public key leave this object.
class Ed25519PrivateKey {
 public:
  static Ed25519PrivateKey generate();
  static std::optional<Ed25519PrivateKey> from_seed(std::string_view seed32);
  // PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") as written by `openssl genpkey -algorithm ed25519`.
  static std::optional<Ed25519PrivateKey> from_pem(std::string_view pem);

  std::string public_key_raw() const;                // 32 bytes
  std::string sign(std::string_view message) const;  // 64 bytes

 private:
  explicit Ed25519PrivateKey(ossl::Pkey key) : key_(std::move(key)) {}
  ossl::Pkey key_;
};

// An ECDSA signature given as its two integers (SSH: mpints; JWS: r || s) in the DER form
// OpenSSL verifies. Takes ownership of r and s; nullopt if either is missing or encoding fails.
std::optional<std::string> ecdsa_signature_der(ossl::Bn r, ossl::Bn s);

bool ed25519_verify(std::string_view public_key_raw, std::string_view message,
                    std::string_view signature);

}  // namespace castgate
