#include "gateway/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <stdexcept>

#include "common/encoding.h"
#include "common/text.h"
#include "gateway/ssh_wire.h"

namespace castgate {

std::string_view to_string(HostKeyCheck check) {
  switch (check) {
    case HostKeyCheck::kMatch:
      return "match";
    case HostKeyCheck::kMismatch:
      return "mismatch";
    case HostKeyCheck::kUnknown:
      return "unknown";
    case HostKeyCheck::kRevoked:
      return "revoked";
  }
  return "unknown";
}

std::string KnownHosts::host_name_for(std::string_view host, int port) {
  if (port == 22) return std::string(host);
  // Appended rather than "[" + std::string(host): GCC 12 at -O3 warns falsely (-Wrestrict) there.
  std::string name;
  name.reserve(host.size() + 8);
  name += '[';
  name += host;
  name += "]:";
  name += std::to_string(port);
  return name;
}

namespace {

bool hashed_match(std::string_view pattern, std::string_view name) {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  auto parts = split(pattern.substr(3), '|', false);
  if (parts.size() != 2) return false;
  auto salt = base64_decode(parts[0]);
  auto want = base64_decode(parts[1]);
  if (!salt || !want || want->size() != 20) return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
            reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac, &len))
    return false;
  return len == 20 && CRYPTO_memcmp(mac, want->data(), 20) == 0;
}

bool pattern_matches(std::string_view pattern, std::string_view name) {
  if (starts_with(pattern, "|1|")) return hashed_match(pattern, name);
  std::string p(pattern), n(name);
  std::transform(p.begin(), p.end(), p.begin(), ::tolower);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return glob_match(p, n);
}

}  // namespace

bool KnownHosts::matches(const Entry& entry, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    bool positive = false, negated = false;
    for (const auto& pattern : entry.patterns) {
      if (!pattern.empty() && pattern[0] == '!') {
        if (pattern_matches(std::string_view(pattern).substr(1), name)) negated = true;
      } else if (pattern_matches(pattern, name)) {
        positive = true;
      }
    }
    if (positive && !negated) return true;
  }
  return false;
}

KnownHosts KnownHosts::parse(std::string_view text, const std::string& origin,
                             std::vector<std::string>* warnings) {
  KnownHosts kh;
  size_t lineno = 0;
  for (auto& raw : split(text, '\n', false)) {
    ++lineno;
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto where = origin + ":" + std::to_string(lineno) + ": ";
    Entry e;
    if (line[0] == '@') {
      size_t sp = line.find_first_of(" \t");
      std::string_view marker = line.substr(0, sp);
      if (sp == std::string_view::npos) throw std::runtime_error(where + "marker without entry");
      line = trim(line.substr(sp));
      if (marker == "@revoked") {
        e.revoked = true;
      } else if (marker == "@cert-authority") {
        if (warnings)
          warnings->push_back(where +
                              "@cert-authority entries are not supported (host certificates); "
                              "pin the host keys themselves");
        continue;
      } else {
        throw std::runtime_error(where + "unknown marker " + printable(marker, 40));
      }
    }
    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos)
      throw std::runtime_error(where + "expected host names and a key");
    e.patterns = split(line.substr(0, sp), ',');
    auto key = ssh::parse_public_key(line.substr(sp));
    if (!key) throw std::runtime_error(where + key.error().detail);
    e.key_type = key->type;
    e.key_blob = std::move(key->blob);
    kh.entries_.push_back(std::move(e));
  }
  return kh;
}

HostKeyCheck KnownHosts::check(const std::vector<std::string>& names,
                               std::string_view key_blob) const {
  bool any = false;
  for (const auto& e : entries_) {
    if (!matches(e, names)) continue;
    if (e.revoked) {
      if (e.key_blob == key_blob) return HostKeyCheck::kRevoked;
      continue;
    }
    any = true;
  }
  for (const auto& e : entries_)
    if (!e.revoked && e.key_blob == key_blob && matches(e, names)) return HostKeyCheck::kMatch;
  return any ? HostKeyCheck::kMismatch : HostKeyCheck::kUnknown;
}

std::vector<std::string> KnownHosts::key_types_for(const std::vector<std::string>& names) const {
  std::vector<std::string> types;
  for (const auto& e : entries_) {
    if (e.revoked || !matches(e, names)) continue;
    std::vector<std::string> algos;
    if (e.key_type == "ssh-rsa") {
      algos = {"rsa-sha2-512", "rsa-sha2-256"};
    } else {
      algos = {e.key_type};
    }
    for (auto& a : algos)
      if (std::find(types.begin(), types.end(), a) == types.end()) types.push_back(a);
  }
  return types;
}

}  // namespace castgate
