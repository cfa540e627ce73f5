#include "gateway/user_certificate_signer.h"

#include <openssl/core_names.h>

#include <algorithm>

#include "common/clock.h"
#include "common/crypto.h"
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

CertificateResult<std::string> UserCertificateSigner::sign(
    const UserCertificateRequest& req) const {
  ssh::WireReader key(req.public_key_blob);
  std::string_view type, pk;
  if (!key.string(type) || type != kEd25519 || !key.string(pk) || pk.size() != 32 || !key.empty())
    return fail(CertificateError::kNotEd25519Key, "the session key is not an Ed25519 key");
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

std::string_view to_string(CertificateError e) {
  switch (e) {
    case CertificateError::kNotEd25519Key:
      return "not an ed25519 key";
    case CertificateError::kTruncated:
      return "truncated";
    case CertificateError::kBadKey:
      return "bad key";
    case CertificateError::kUnsupportedType:
      return "unsupported type";
    case CertificateError::kBadSignatureField:
      return "bad signature field";
    case CertificateError::kBadPrincipals:
      return "bad principals";
    case CertificateError::kBadCriticalOptions:
      return "bad critical options";
    case CertificateError::kBadExtensions:
      return "bad extensions";
  }
  return "unknown";
}

CertificateResult<ParsedCertificate> parse_certificate(std::string_view blob) {
  ssh::WireReader r(blob);
  std::string_view type, nonce, key_id, principals, crit, ext, reserved, sigkey;
  ParsedCertificate c;
  if (!r.string(type)) return fail(CertificateError::kTruncated, "truncated certificate");
  // The certified key's own fields, then the fields common to all certificates.
  ssh::WireWriter plain;
  if (type == kEd25519Cert) {
    std::string_view pk;
    if (!r.string(nonce) || !r.string(pk) || pk.size() != 32)
      return fail(CertificateError::kBadKey, "bad Ed25519 certificate");
    plain.string(kEd25519);
    plain.string(pk);
  } else if (type == "ecdsa-sha2-nistp256-cert-v01@openssh.com") {
    std::string_view curve, q;
    if (!r.string(nonce) || !r.string(curve) || curve != "nistp256" || !r.string(q))
      return fail(CertificateError::kBadKey, "bad ECDSA certificate");
    plain.string("ecdsa-sha2-nistp256");
    plain.string(curve);
    plain.string(q);
  } else if (type == "ssh-rsa-cert-v01@openssh.com") {
    std::string_view e, n;
    if (!r.string(nonce) || !r.string(e) || !r.string(n))
      return fail(CertificateError::kBadKey, "bad RSA certificate");
    plain.string("ssh-rsa");
    plain.string(e);
    plain.string(n);
  } else {
    return fail(CertificateError::kUnsupportedType, "unsupported certificate type");
  }
  if (!r.u64(c.serial) || !r.u32(c.cert_type) || !r.string(key_id) || !r.string(principals) ||
      !r.u64(c.valid_after) || !r.u64(c.valid_before) || !r.string(crit) || !r.string(ext) ||
      !r.string(reserved) || !r.string(sigkey))
    return fail(CertificateError::kTruncated, "truncated certificate");
  c.signed_part = std::string(blob.substr(0, r.consumed_from(blob)));
  std::string_view sig;
  if (!r.string(sig) || !r.empty())
    return fail(CertificateError::kBadSignatureField, "bad certificate signature field");
  c.type = std::string(type);
  c.nonce = std::string(nonce);
  c.public_key_blob = plain.take();
  c.key_id = std::string(key_id);
  ssh::WireReader pr(principals);
  while (!pr.empty()) {
    std::string_view p;
    if (!pr.string(p)) return fail(CertificateError::kBadPrincipals, "bad principals list");
    c.principals.emplace_back(p);
  }
  if (!unpack_options(crit, c.critical_options))
    return fail(CertificateError::kBadCriticalOptions, "bad critical options");
  if (!unpack_options(ext, c.extensions))
    return fail(CertificateError::kBadExtensions, "bad extensions");
  c.signature_key = std::string(sigkey);
  c.signature = std::string(sig);
  return c;
}

namespace {

ossl::Bn mpint(std::string_view bytes) {
  return ossl::Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()), nullptr));
}

ossl::Pkey pkey_from_params(const char* type, OSSL_PARAM* params) {
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return nullptr;
  return ossl::Pkey(pkey);
}

// An OpenSSL key for an SSH public key blob (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa).
ossl::Pkey pkey_from_blob(std::string_view blob, std::string& type) {
  ssh::WireReader r(blob);
  std::string_view t;
  if (!r.string(t)) return nullptr;
  type = std::string(t);
  if (t == kEd25519) {
    std::string_view pk;
    if (!r.string(pk) || pk.size() != 32) return nullptr;
    return ossl::Pkey(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pk.data()), 32));
  }
  ossl::ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  if (t == "ecdsa-sha2-nistp256") {
    std::string_view curve, q;
    if (!r.string(curve) || curve != "nistp256" || !r.string(q)) return nullptr;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, q.data(), q.size()))
      return nullptr;
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    return pkey_from_params("EC", params.get());
  }
  if (t == "ssh-rsa") {
    std::string_view e, n;
    if (!r.string(e) || !r.string(n)) return nullptr;
    auto bn_e = mpint(e), bn_n = mpint(n);
    if (!bn_e || !bn_n || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
      return nullptr;
    ossl::Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    return pkey_from_params("RSA", params.get());
  }
  return nullptr;
}

}  // namespace

bool verify_certificate_signature(const ParsedCertificate& cert) {
  std::string key_type;
  ossl::Pkey key = pkey_from_blob(cert.signature_key, key_type);
  if (!key) return false;
  ssh::WireReader s(cert.signature);
  std::string_view alg, sig;
  if (!s.string(alg) || !s.string(sig) || !s.empty()) return false;
  const EVP_MD* md = nullptr;
  std::string der;
  if (alg == kEd25519 && key_type == kEd25519) {
    if (sig.size() != 64) return false;
  } else if (alg == "ecdsa-sha2-nistp256" && key_type == "ecdsa-sha2-nistp256") {
    // SSH: string(mpint r, mpint s); OpenSSL: DER.
    ssh::WireReader rs(sig);
    std::string_view r_bytes, s_bytes;
    if (!rs.string(r_bytes) || !rs.string(s_bytes) || !rs.empty()) return false;
    auto encoded = ecdsa_signature_der(mpint(r_bytes), mpint(s_bytes));
    if (!encoded) return false;
    der = std::move(*encoded);
    sig = der;
    md = EVP_sha256();
  } else if ((alg == "rsa-sha2-256" || alg == "rsa-sha2-512") && key_type == "ssh-rsa") {
    if (EVP_PKEY_get_bits(key.get()) < 2048) return false;
    md = alg == "rsa-sha2-256" ? EVP_sha256() : EVP_sha512();
  } else {
    return false;  // includes "ssh-rsa" (SHA-1) signatures
  }
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(cert.signed_part.data()),
                          cert.signed_part.size()) == 1;
}

}  // namespace castgate
