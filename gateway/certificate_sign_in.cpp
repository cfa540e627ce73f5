#include "gateway/certificate_sign_in.h"

#include <arpa/inet.h>

#include <cstring>

#include "common/clock.h"
#include "common/text.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate.h"

namespace castgate {

bool is_certificate_key_type(std::string_view type) {
  constexpr std::string_view kSuffix = "-cert-v01@openssh.com";
  return type.size() > kSuffix.size() && type.substr(type.size() - kSuffix.size()) == kSuffix;
}

namespace {

bool parse_address(const std::string& text, unsigned char out[16], int& family) {
  if (inet_pton(AF_INET, text.c_str(), out) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

}  // namespace

bool address_in_list(const std::string& ip, std::string_view list) {
  unsigned char addr[16];
  int family;
  if (!parse_address(ip, addr, family)) return false;
  for (auto& item : split(list, ',')) {
    std::string net = item;
    int bits = -1;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      net = item.substr(0, slash);
      bits = std::atoi(item.c_str() + slash + 1);
    }
    unsigned char block[16];
    int bfamily;
    if (!parse_address(net, block, bfamily) || bfamily != family) continue;
    int total = family == AF_INET ? 32 : 128;
    if (bits < 0 || bits > total) bits = total;
    bool match = true;
    for (int i = 0; i < bits && match; ++i) {
      int byte = i / 8, bit = 7 - i % 8;
      match = ((addr[byte] >> bit) & 1) == ((block[byte] >> bit) & 1);
    }
    if (match) return true;
  }
  return false;
}

CertificateCheck check_user_certificate(std::string_view blob, const IdentityKeys& identities,
                                        std::chrono::system_clock::time_point now,
                                        const std::string& client_ip) {
  CertificateCheck c;
  ParsedCertificate cert;
  std::string error;
  if (!parse_certificate(blob, cert, error)) {
    c.reason = "unreadable certificate: " + error;
    return c;
  }
  const TrustedCa* ca = identities.find_ca(cert.signature_key);
  if (!ca) {
    c.reason =
        "certificate signed by an untrusted CA " + ssh::fingerprint_sha256(cert.signature_key);
    return c;
  }
  if (!verify_certificate_signature(cert)) {
    c.reason = "the CA signature of the certificate does not verify";
    return c;
  }
  if (cert.cert_type != 1) {
    c.reason = "not a user certificate";
    return c;
  }
  auto t = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(now)));
  if (t < cert.valid_after || t >= cert.valid_before) {
    c.reason = "the certificate is not valid now (expired or not yet valid)";
    return c;
  }
  for (const auto& [name, value] : cert.critical_options) {
    if (name == "source-address") {
      if (!address_in_list(client_ip, value)) {
        c.reason = "the certificate may not be used from " + client_ip;
        return c;
      }
    } else {
      // force-command, verify-required and anything unknown: castgate cannot honour them, so it
      // refuses the certificate (as OpenSSH refuses unknown critical options).
      c.reason =
          "the certificate has a critical option castgate does not support: " + printable(name, 60);
      return c;
    }
  }
  if (cert.key_id.empty()) {
    c.reason = "the certificate has no key id to name the identity";
    return c;
  }
  c.identity.subject = "cert:" + ca->name + ":" + cert.key_id;
  c.identity.name = cert.key_id;
  c.identity.groups = ca->groups;
  c.identity.kind = ca->kind;
  c.identity.issuer = "ssh-ca:" + ca->name;
  c.identity.auth_method = "certificate";
  c.principals = cert.principals;
  c.ok = true;
  return c;
}

}  // namespace castgate
