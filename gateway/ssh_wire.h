// The SSH binary encoding (RFC 4251 section 5): big-endian integers and length-prefixed
// strings. Used for key blobs, certificates and OpenSSH private key files. The reader is strict
// and never reads past its input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace castgate::ssh {

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool u8(uint8_t& v);
  bool u32(uint32_t& v);
  bool u64(uint64_t& v);
  bool string(std::string_view& v);
  bool bytes(size_t n, std::string_view& v);
  bool empty() const { return data_.empty(); }
  std::string_view rest() const { return data_; }
  size_t consumed_from(std::string_view whole) const { return whole.size() - data_.size(); }

 private:
  std::string_view data_;
};

class WireWriter {
 public:
  void u8(uint8_t v) { out_ += static_cast<char>(v); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void string(std::string_view v);
  void raw(std::string_view v) { out_ += v; }
  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// The key type name at the start of a public key blob ("ssh-ed25519", ...), or empty.
std::string_view blob_key_type(std::string_view blob);
// "SHA256:<base64 without padding>" as ssh-keygen -l prints it.
std::string fingerprint_sha256(std::string_view blob);

// Why a key did not parse; the Error's detail says it in words for the configuration error.
enum class KeyError {
  kMalformed,  // not "type base64"
  kBadBase64,
  kTypeMismatch,   // the blob's own type is not the declared one
  kUnknownFormat,  // not an OpenSSH private key file
  kTruncated,
  kEncrypted,
  kNotOneKey,
  kCorrupt,
  kNotEd25519,
};
std::string_view to_string(KeyError e);
template <class T>
using KeyResult = Result<T, Error<KeyError>>;

struct PublicKeyLine {
  std::string type;     // "ssh-ed25519"
  std::string blob;     // decoded key blob
  std::string comment;  // rest of the line
};
// Parses "type base64 [comment]" (the key part of authorized_keys and known_hosts lines).
// Checks that the blob's own type matches the declared type.
KeyResult<PublicKeyLine> parse_public_key(std::string_view text);

// The 32-byte Ed25519 seed from an unencrypted OpenSSH private key file
// ("-----BEGIN OPENSSH PRIVATE KEY-----"). Fails with a reason for other key types or
// encrypted keys.
KeyResult<std::string> parse_openssh_ed25519_private_key(std::string_view pem);

}  // namespace castgate::ssh
