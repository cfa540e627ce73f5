// What signs a session's last event. In castgate that is the signer process (the recording key
// never enters the process that parses the network); tests and tools sign with a key in memory.
#pragma once

#include <string>
#include <string_view>

#include "common/crypto.h"

namespace castgate::asciicast {

class RecordSigner {
 public:
  virtual ~RecordSigner() = default;
  virtual const std::string& public_key_raw() const = 0;  // 32 bytes
  // The Ed25519 signature (64 bytes) of signature_payload(unsigned_line); empty if the signer
  // cannot answer (the line is then written unsigned, and verify reports it).
  virtual std::string sign_line(std::string_view unsigned_line) const = 0;
};

class LocalRecordSigner final : public RecordSigner {
 public:
  explicit LocalRecordSigner(const Ed25519PrivateKey& key)
      : key_(key), public_key_(key.public_key_raw()) {}
  const std::string& public_key_raw() const override { return public_key_; }
  std::string sign_line(std::string_view unsigned_line) const override;

 private:
  const Ed25519PrivateKey& key_;
  const std::string public_key_;
};

}  // namespace castgate::asciicast
