#include "gateway/user_certificate.h"

#include <algorithm>

#include "common/clock.h"
#include "common/encoding.h"
#include "gateway/ssh_wire.h"

namespace castgate {
namespace {

constexpr std::string_view kEd25519 = "ssh-ed25519";
constexpr std::string_view kEd25519Cert = "ssh-ed25519-cert-v01@openssh.com";
constexpr uint32_t kUserCert = 1;

std::string ed25519_blob(std::string_view raw32) {
  ssh::WireWriter w;
  w.string(kEd25519);
  w.string(raw32);
  return w.take();
}

// Extensions and critical options are sorted by name, each followed by its data, where a
// non-empty value is itself wrapped in a string (PROTOCOL.certkeys).
std::string pack_options(std::vector<std::pair<std::string, std::string>> options) {
  std::sort(options.begin(), options.end());
  ssh::WireWriter w;
  for (auto& [name, value] : options) {
    w.string(name);
    if (value.empty()) {
      w.string("");
    } else {
      ssh::WireWriter inner;
      inner.string(value);
      w.string(inner.data());
    }
  }
  return w.take();
}

bool unpack_options(std::string_view packed,
                    std::vector<std::pair<std::string, std::string>>& out) {
  ssh::WireReader r(packed);
  std::string prev;
  while (!r.empty()) {
    std::string_view name, data;
    if (!r.string(name) || !r.string(data)) return false;
    if (!out.empty() && std::string(name) <= prev) return false;  // must be sorted and unique
    prev = std::string(name);
    std::string value;
    if (!data.empty()) {
      ssh::WireReader inner(data);
      std::string_view v;
      if (!inner.string(v) || !inner.empty()) return false;
      value = std::string(v);
    }
    out.emplace_back(std::string(name), std::move(value));
  }
  return true;
}

}  // namespace

UserCertificateSigner::UserCertificateSigner(Ed25519PrivateKey ca_key)
    : ca_key_(std::move(ca_key)), ca_blob_(ed25519_blob(ca_key_.public_key_raw())) {}

std::string UserCertificateSigner::ca_public_line() const {
  return std::string(kEd25519) + " " + base64_encode(ca_blob_) + " castgate-user-ca";
}

std::string UserCertificateSigner::sign(const UserCertificateRequest& req) const {
  ssh::WireReader key(req.public_key_blob);
  std::string_view type, pk;
  if (!key.string(type) || type != kEd25519 || !key.string(pk) || pk.size() != 32 || !key.empty())
    return {};
  ssh::WireWriter w;
  w.string(kEd25519Cert);
  w.string(random_bytes(32));  // nonce
  w.string(pk);
  w.u64(req.serial);
  w.u32(kUserCert);
  w.string(req.key_id);
  ssh::WireWriter principals;
  for (const auto& p : req.principals) principals.string(p);
  w.string(principals.data());
  w.u64(static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(req.valid_after))));
  w.u64(static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(req.valid_before))));
  w.string(pack_options(req.critical_options));
  std::vector<std::pair<std::string, std::string>> ext;
  for (const auto& e : req.extensions) ext.emplace_back(e, "");
  w.string(pack_options(ext));
  w.string("");  // reserved
  w.string(ca_blob_);
  std::string signature = ca_key_.sign(w.data());
  ssh::WireWriter sig;
  sig.string(kEd25519);
  sig.string(signature);
  w.string(sig.data());
  return w.take();
}

bool parse_certificate(std::string_view blob, ParsedCertificate& c, std::string& error) {
  ssh::WireReader r(blob);
  std::string_view type, nonce, pk, key_id, principals, crit, ext, reserved, sigkey;
  auto fail = [&](const char* what) {
    error = what;
    return false;
  };
  if (!r.string(type)) return fail("truncated certificate");
  if (type != kEd25519Cert) return fail("unsupported certificate type");
  if (!r.string(nonce) || !r.string(pk) || !r.u64(c.serial) || !r.u32(c.cert_type) ||
      !r.string(key_id) || !r.string(principals) || !r.u64(c.valid_after) ||
      !r.u64(c.valid_before) || !r.string(crit) || !r.string(ext) || !r.string(reserved) ||
      !r.string(sigkey))
    return fail("truncated certificate");
  if (pk.size() != 32) return fail("bad certified key length");
  c.signed_part = std::string(blob.substr(0, r.consumed_from(blob)));
  std::string_view sig;
  if (!r.string(sig) || !r.empty()) return fail("bad certificate signature field");
  c.type = std::string(type);
  c.nonce = std::string(nonce);
  c.public_key_blob = ed25519_blob(pk);
  c.key_id = std::string(key_id);
  ssh::WireReader pr(principals);
  while (!pr.empty()) {
    std::string_view p;
    if (!pr.string(p)) return fail("bad principals list");
    c.principals.emplace_back(p);
  }
  if (!unpack_options(crit, c.critical_options)) return fail("bad critical options");
  if (!unpack_options(ext, c.extensions)) return fail("bad extensions");
  c.signature_key = std::string(sigkey);
  c.signature = std::string(sig);
  return true;
}

bool verify_certificate_signature(const ParsedCertificate& cert) {
  ssh::WireReader k(cert.signature_key);
  std::string_view ktype, kraw;
  if (!k.string(ktype) || ktype != kEd25519 || !k.string(kraw) || !k.empty()) return false;
  ssh::WireReader s(cert.signature);
  std::string_view stype, sraw;
  if (!s.string(stype) || stype != kEd25519 || !s.string(sraw) || !s.empty()) return false;
  return ed25519_verify(kraw, cert.signed_part, sraw);
}

}  // namespace castgate
