#include "gateway/ssh_wire.h"

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/text.h"

namespace castgate::ssh {

bool WireReader::u8(uint8_t& v) {
  if (data_.empty()) return false;
  v = static_cast<uint8_t>(data_[0]);
  data_.remove_prefix(1);
  return true;
}

bool WireReader::u32(uint32_t& v) {
  if (data_.size() < 4) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(data_.data());
  v = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
  data_.remove_prefix(4);
  return true;
}

bool WireReader::u64(uint64_t& v) {
  uint32_t hi, lo;
  if (data_.size() < 8 || !u32(hi) || !u32(lo)) return false;
  v = uint64_t{hi} << 32 | lo;
  return true;
}

bool WireReader::bytes(size_t n, std::string_view& v) {
  if (data_.size() < n) return false;
  v = data_.substr(0, n);
  data_.remove_prefix(n);
  return true;
}

bool WireReader::string(std::string_view& v) {
  uint32_t len;
  std::string_view save = data_;
  if (!u32(len) || data_.size() < len) {
    data_ = save;
    return false;
  }
  return bytes(len, v);
}

void WireWriter::u32(uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out_.append(b, 4);
}

void WireWriter::u64(uint64_t v) {
  u32(static_cast<uint32_t>(v >> 32));
  u32(static_cast<uint32_t>(v));
}

void WireWriter::string(std::string_view v) {
  u32(static_cast<uint32_t>(v.size()));
  out_.append(v);
}

std::string_view blob_key_type(std::string_view blob) {
  WireReader r(blob);
  std::string_view type;
  if (!r.string(type)) return {};
  return type;
}

std::string fingerprint_sha256(std::string_view blob) {
  auto d = sha256(blob);
  std::string b64 =
      base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "SHA256:" + b64;
}

std::string_view to_string(KeyError e) {
  switch (e) {
    case KeyError::kMalformed:
      return "malformed";
    case KeyError::kBadBase64:
      return "bad base64";
    case KeyError::kTypeMismatch:
      return "type mismatch";
    case KeyError::kUnknownFormat:
      return "unknown format";
    case KeyError::kTruncated:
      return "truncated";
    case KeyError::kEncrypted:
      return "encrypted";
    case KeyError::kNotOneKey:
      return "not one key";
    case KeyError::kCorrupt:
      return "corrupt";
    case KeyError::kNotEd25519:
      return "not ed25519";
  }
  return "unknown";
}

KeyResult<PublicKeyLine> parse_public_key(std::string_view text) {
  text = trim(text);
  size_t sp = text.find_first_of(" \t");
  if (sp == std::string_view::npos) {
    return fail(KeyError::kMalformed, "expected \"<key type> <base64 key>\"");
  }
  std::string_view type = text.substr(0, sp);
  std::string_view rest = trim(text.substr(sp));
  size_t sp2 = rest.find_first_of(" \t");
  std::string_view b64 = rest.substr(0, sp2);
  std::string_view comment =
      sp2 == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp2));
  auto blob = base64_decode(b64);
  if (!blob) {
    return fail(KeyError::kBadBase64, "the key is not valid base64");
  }
  if (blob_key_type(*blob) != type) {
    return fail(KeyError::kTypeMismatch,
                "the key data does not match its type \"" + printable(type, 60) + "\"");
  }
  return PublicKeyLine{std::string(type), std::move(*blob), std::string(comment)};
}

KeyResult<std::string> parse_openssh_ed25519_private_key(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  size_t b = pem.find(kBegin), e = pem.find(kEnd);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b) {
    return fail(KeyError::kUnknownFormat, "not an OpenSSH private key");
  }
  std::string b64;
  for (char c : pem.substr(b + kBegin.size(), e - b - kBegin.size()))
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') b64 += c;
  auto raw = base64_decode(b64);
  if (!raw) {
    return fail(KeyError::kBadBase64, "the key file is not valid base64");
  }
  constexpr std::string_view kMagic("openssh-key-v1\0", 15);
  if (raw->compare(0, kMagic.size(), kMagic) != 0) {
    return fail(KeyError::kUnknownFormat, "unknown private key format");
  }
  WireReader r(std::string_view(*raw).substr(kMagic.size()));
  std::string_view cipher, kdf, kdfopts, pub, priv;
  uint32_t nkeys;
  if (!r.string(cipher) || !r.string(kdf) || !r.string(kdfopts) || !r.u32(nkeys)) {
    return fail(KeyError::kTruncated, "truncated private key");
  }
  if (cipher != "none") {
    return fail(KeyError::kEncrypted,
                "the private key is encrypted; decrypt it (ssh-keygen -p) or use a PKCS#8 key");
  }
  if (nkeys != 1 || !r.string(pub) || !r.string(priv)) {
    return fail(KeyError::kNotOneKey, "expected exactly one key");
  }
  WireReader p(priv);
  uint32_t check1, check2;
  std::string_view type, pk, sk;
  if (!p.u32(check1) || !p.u32(check2) || check1 != check2 || !p.string(type)) {
    return fail(KeyError::kCorrupt, "corrupt private key");
  }
  if (type != "ssh-ed25519") {
    return fail(KeyError::kNotEd25519,
                "the key is " + printable(type, 40) + "; an Ed25519 key is required");
  }
  if (!p.string(pk) || !p.string(sk) || pk.size() != 32 || sk.size() != 64 || sk.substr(32) != pk) {
    return fail(KeyError::kCorrupt, "corrupt Ed25519 private key");
  }
  return std::string(sk.substr(0, 32));
}

}  // namespace castgate::ssh
