#include "gateway/presented_certificate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <iterator>

#include "common/clock.h"
#include "common/text.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"

namespace castgate {

bool is_certificate_key_type(std::string_view type) {
  constexpr std::string_view kSuffix = "-cert-v01@openssh.com";
  return type.size() > kSuffix.size() && type.substr(type.size() - kSuffix.size()) == kSuffix;
}

namespace {

// The longest textual IPv6 address (with an IPv4 tail, INET6_ADDRSTRLEN less its NUL), and that
// with "/128".
constexpr size_t kMaxAddressText = 45;
constexpr size_t kMaxEntryLength = kMaxAddressText + 4;

using AddressBytes = std::array<unsigned char, 16>;

int address_length(int family) {
  return family == AF_INET ? 4 : 16;
}

// Only the characters addresses are written with reach inet_pton: no NUL byte ends the text early,
// no scope id ("%eth0"), no name, no space.
bool parse_ip(std::string_view text, int& family, AddressBytes& out) {
  if (text.empty() || text.size() > kMaxAddressText) return false;
  for (char ch : text)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
          ch == '.' || ch == ':'))
      return false;
  std::string z(text);
  family = z.find(':') == std::string::npos ? AF_INET : AF_INET6;
  out = {};
  return inet_pton(family, z.c_str(), out.data()) == 1;
}

// Decimal digits only: no sign, no space, nothing after them.
bool parse_prefix_length(std::string_view text, int max, int& out) {
  if (text.empty() || text.size() > 3) return false;
  int value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + (ch - '0');
  }
  if (value > max) return false;
  out = value;
  return true;
}

unsigned char prefix_mask(int bits) {
  return static_cast<unsigned char>(0xff00u >> bits);
}

bool in_block(const AddressBlock& block, const AddressBytes& addr) {
  int whole = block.prefix_length / 8, bits = block.prefix_length % 8;
  if (!std::equal(addr.begin(), addr.begin() + whole, block.network.begin())) return false;
  return bits == 0 || ((addr[whole] ^ block.network[whole]) & prefix_mask(bits)) == 0;
}

bool host_bits_clear(const AddressBlock& block) {
  int whole = block.prefix_length / 8, bits = block.prefix_length % 8;
  if (bits != 0 && (block.network[whole] & ~prefix_mask(bits)) != 0) return false;
  int first_host_byte = whole + (bits != 0 ? 1 : 0);
  return std::all_of(block.network.begin() + first_host_byte,
                     block.network.begin() + address_length(block.family),
                     [](unsigned char b) { return b == 0; });
}

AddressListError parse_entry(std::string_view entry, AddressBlock& block) {
  if (entry.empty()) return AddressListError::kEmptyEntry;
  if (entry.size() > kMaxEntryLength) return AddressListError::kEntryTooLong;
  auto slash = entry.find('/');
  if (!parse_ip(entry.substr(0, slash), block.family, block.network))
    return AddressListError::kBadAddress;
  int max = address_length(block.family) * 8;
  block.prefix_length = max;
  if (slash != std::string_view::npos &&
      !parse_prefix_length(entry.substr(slash + 1), max, block.prefix_length))
    return AddressListError::kBadPrefixLength;
  if (!host_bits_clear(block)) return AddressListError::kHostBitsSet;
  return AddressListError::kNone;
}

}  // namespace

std::string_view to_string(AddressListError e) {
  switch (e) {
    case AddressListError::kNone:
      return "none";
    case AddressListError::kEmptyEntry:
      return "empty entry";
    case AddressListError::kTooManyEntries:
      return "too many entries";
    case AddressListError::kEntryTooLong:
      return "entry too long";
    case AddressListError::kBadAddress:
      return "bad address";
    case AddressListError::kBadPrefixLength:
      return "bad prefix length";
    case AddressListError::kHostBitsSet:
      return "bits set past the prefix length";
  }
  return "unknown";
}

AddressList parse_address_list(std::string_view text) {
  AddressList list;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view entry =
        text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    AddressBlock block;
    list.error = list.blocks.size() == AddressList::kMaxEntries ? AddressListError::kTooManyEntries
                                                                : parse_entry(entry, block);
    if (!list.ok()) {
      list.bad_entry = printable(entry, 60);
      list.blocks.clear();
      return list;
    }
    list.blocks.push_back(block);
    if (comma == std::string_view::npos) return list;
    start = comma + 1;
  }
}

bool AddressList::contains(std::string_view ip) const {
  int family;
  AddressBytes addr;
  if (!ok() || !parse_ip(ip, family, addr)) return false;
  // An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d; OpenSSH matches it as
  // a.b.c.d, and so does castgate.
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::equal(std::begin(kMapped), std::end(kMapped), addr.begin())) {
    family = AF_INET;
    std::copy(addr.begin() + 12, addr.end(), addr.begin());
    std::fill(addr.begin() + 4, addr.end(), 0);
  }
  return std::any_of(blocks.begin(), blocks.end(), [&](const AddressBlock& b) {
    return b.family == family && in_block(b, addr);
  });
}

bool address_in_list(const std::string& ip, std::string_view list) {
  return parse_address_list(list).contains(ip);
}

std::string_view to_string(CertificateRefusal e) {
  switch (e) {
    case CertificateRefusal::kUnreadable:
      return "unreadable";
    case CertificateRefusal::kUntrustedCa:
      return "untrusted CA";
    case CertificateRefusal::kBadSignature:
      return "bad signature";
    case CertificateRefusal::kNotUserCertificate:
      return "not a user certificate";
    case CertificateRefusal::kNotValidNow:
      return "not valid now";
    case CertificateRefusal::kNoPrincipals:
      return "no principals";
    case CertificateRefusal::kBadSourceAddress:
      return "bad source-address";
    case CertificateRefusal::kWrongSourceAddress:
      return "wrong source address";
    case CertificateRefusal::kUnsupportedCriticalOption:
      return "unsupported critical option";
    case CertificateRefusal::kNoKeyId:
      return "no key id";
  }
  return "unknown";
}

CertificateCheck check_presented_certificate(std::string_view blob, const IdentityKeys& identities,
                                             std::chrono::system_clock::time_point now,
                                             const std::string& client_ip) {
  auto parsed = parse_certificate(blob);
  if (!parsed)
    return fail(CertificateRefusal::kUnreadable,
                "unreadable certificate: " + parsed.error().detail);
  const ParsedCertificate& cert = *parsed;
  const TrustedCa* ca = identities.find_ca(cert.signature_key);
  if (!ca)
    return fail(CertificateRefusal::kUntrustedCa, "certificate signed by an untrusted CA " +
                                                      ssh::fingerprint_sha256(cert.signature_key));
  if (!verify_certificate_signature(cert))
    return fail(CertificateRefusal::kBadSignature,
                "the CA signature of the certificate does not verify");
  if (cert.cert_type != 1)
    return fail(CertificateRefusal::kNotUserCertificate, "not a user certificate");
  auto t = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(now)));
  if (t < cert.valid_after || t >= cert.valid_before)
    return fail(CertificateRefusal::kNotValidNow,
                "the certificate is not valid now (expired or not yet valid)");
  if (cert.principals.empty()) {
    // OpenSSH refuses these ("Certificate lacks principal list"): a certificate for any login is
    // too easily issued by mistake.
    return fail(CertificateRefusal::kNoPrincipals,
                "the certificate lacks a principal list (it names no login it is valid for)");
  }
  for (const auto& [name, value] : cert.critical_options) {
    if (name == "source-address") {
      auto allowed = parse_address_list(value);
      if (!allowed.ok())
        return fail(CertificateRefusal::kBadSourceAddress,
                    "the certificate's source-address is malformed (" +
                        std::string(to_string(allowed.error)) + ": \"" + allowed.bad_entry + "\")");
      if (!allowed.contains(client_ip))
        return fail(CertificateRefusal::kWrongSourceAddress,
                    "the certificate may not be used from " + client_ip);
    } else {
      // force-command, verify-required and anything unknown: castgate cannot honour them, so it
      // refuses the certificate (as OpenSSH refuses unknown critical options).
      return fail(CertificateRefusal::kUnsupportedCriticalOption,
                  "the certificate has a critical option castgate does not support: " +
                      printable(name, 60));
    }
  }
  if (cert.key_id.empty())
    return fail(CertificateRefusal::kNoKeyId, "the certificate has no key id to name the identity");
  AcceptedCertificate c;
  c.valid_before = cert.valid_before;
  c.identity.subject = "cert:" + ca->name + ":" + cert.key_id;
  c.identity.name = cert.key_id;
  c.identity.groups = ca->groups;
  c.identity.kind = ca->kind;
  c.identity.issuer = "ssh-ca:" + ca->name;
  c.identity.auth_method = "certificate";
  c.principals = cert.principals;
  return c;
}

}  // namespace castgate
