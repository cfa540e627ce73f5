#include "asciicast/chain.h"

#include "asciicast/record_signer.h"
#include "common/crypto.h"

namespace castgate::asciicast {

std::string chain_hash(std::string_view canonical_line) {
  return sha256_hex(canonical_line);
}

void chain_hash(std::string_view canonical_line, std::string& hex) {
  constexpr char kHex[] = "0123456789abcdef";
  Sha256Digest d = sha256(canonical_line);
  hex.resize(2 * d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    hex[2 * i] = kHex[d[i] >> 4];
    hex[2 * i + 1] = kHex[d[i] & 15];
  }
}

std::string signature_payload(std::string_view canonical_line_without_sig) {
  std::string p(kSignatureContext);
  p.append(canonical_line_without_sig);
  return p;
}

std::string recording_key_id(std::string_view public_key_raw) {
  return "ed25519:" + sha256_hex(public_key_raw).substr(0, 16);
}

}  // namespace castgate::asciicast

namespace castgate::asciicast {

std::string LocalRecordSigner::sign_line(std::string_view unsigned_line) const {
  return key_.sign(signature_payload(unsigned_line));
}

}  // namespace castgate::asciicast
