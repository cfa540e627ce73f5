#include "gateway/identity_keys.h"

#include <algorithm>
#include <stdexcept>

#include "common/text.h"
#include "gateway/ssh_wire.h"

namespace castgate {

std::string_view to_string(KeyOptionError e) {
  switch (e) {
    case KeyOptionError::kUnterminatedQuote:
      return "unterminated quote";
    case KeyOptionError::kEmptyName:
      return "empty option name";
    case KeyOptionError::kMissingComma:
      return "missing comma";
  }
  return "unknown";
}

Result<KeyOptions, Error<KeyOptionError>> parse_key_options(std::string_view text) {
  KeyOptions out;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] != '=' && text[i] != ',') ++i;
    std::string name(trim(text.substr(start, i - start)));
    std::string value;
    if (i < text.size() && text[i] == '=') {
      ++i;
      if (i < text.size() && text[i] == '"') {
        ++i;
        bool closed = false;
        while (i < text.size()) {
          if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '"') {
            value += '"';
            i += 2;
          } else if (text[i] == '"') {
            closed = true;
            ++i;
            break;
          } else {
            value += text[i++];
          }
        }
        if (!closed) {
          return fail(KeyOptionError::kUnterminatedQuote, "unterminated quote in option " + name);
        }
      } else {
        size_t vs = i;
        while (i < text.size() && text[i] != ',') ++i;
        value = std::string(text.substr(vs, i - vs));
      }
    }
    if (name.empty()) {
      return fail(KeyOptionError::kEmptyName, "empty option name");
    }
    out.emplace_back(std::move(name), std::move(value));
    if (i < text.size()) {
      if (text[i] != ',') {
        return fail(KeyOptionError::kMissingComma, "expected ',' after option " + out.back().first);
      }
      ++i;
    }
  }
  return out;
}

namespace {

// The options part ends at the first whitespace outside quotes.
size_t options_end(std::string_view line) {
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && quoted && i + 1 < line.size()) {
      ++i;
    } else if (line[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && (line[i] == ' ' || line[i] == '\t')) {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

IdentityKeys IdentityKeys::parse(std::string_view text, const std::string& origin) {
  IdentityKeys out;
  size_t lineno = 0;
  for (auto& raw : split(text, '\n', false)) {
    ++lineno;
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    std::string where = origin + ":" + std::to_string(lineno) + ": ";
    size_t end = options_end(line);
    if (end == std::string_view::npos)
      throw std::runtime_error(where + "expected options and a key");
    auto parsed_options = parse_key_options(line.substr(0, end));
    if (!parsed_options) throw std::runtime_error(where + parsed_options.error().detail);
    const KeyOptions& options = *parsed_options;
    bool is_ca = std::any_of(options.begin(), options.end(),
                             [](const auto& o) { return o.first == "cert-authority"; });
    if (is_ca) {
      TrustedCa ca;
      for (auto& [name, value] : options) {
        if (name == "cert-authority") continue;
        if (name == "name") {
          ca.name = value;
        } else if (name == "groups") {
          ca.groups = split(value, ',');
        } else if (name == "kind" && (value == "human" || value == "workload")) {
          ca.kind = value == "human" ? IdentityKind::kHuman : IdentityKind::kWorkload;
        } else {
          throw std::runtime_error(where + "unknown or bad cert-authority option " +
                                   printable(name, 40));
        }
      }
      auto key = ssh::parse_public_key(line.substr(end));
      if (!key) throw std::runtime_error(where + key.error().detail);
      if (ca.name.empty()) ca.name = ssh::fingerprint_sha256(key->blob);
      ca.key_blob = std::move(key->blob);
      out.cas_.push_back(std::move(ca));
      continue;
    }
    Identity id;
    id.issuer = "castgate:identities";
    id.auth_method = "publickey";
    for (auto& [name, value] : options) {
      if (name == "identity") {
        id.name = value;
      } else if (name == "subject") {
        id.subject = value;
      } else if (name == "email") {
        id.email = value;
      } else if (name == "groups") {
        id.groups = split(value, ',');
      } else if (name == "kind") {
        if (value == "human") {
          id.kind = IdentityKind::kHuman;
        } else if (value == "workload") {
          id.kind = IdentityKind::kWorkload;
        } else {
          throw std::runtime_error(where + "kind must be human or workload");
        }
      } else {
        throw std::runtime_error(where + "unknown option " + printable(name, 40));
      }
    }
    if (id.name.empty()) throw std::runtime_error(where + "identity=\"...\" is required");
    if (!is_admin_name(id.name))
      throw std::runtime_error(where +
                               "identity names may hold letters, digits and . _ @ - "
                               "only (no ':', which qualifies OIDC and certificate "
                               "subjects)");
    if (id.subject.empty()) id.subject = id.name;
    id.assigned_name = id.name;
    id.email_verified = !id.email.empty();  // written by the administrator
    auto key = ssh::parse_public_key(line.substr(end));
    if (!key) throw std::runtime_error(where + key.error().detail);
    if (out.by_blob_.count(key->blob))
      throw std::runtime_error(where + "this key is already mapped to identity " +
                               out.by_blob_[key->blob].name);
    out.by_blob_.emplace(std::move(key->blob), std::move(id));
  }
  return out;
}

const TrustedCa* IdentityKeys::find_ca(std::string_view ca_key_blob) const {
  for (const auto& ca : cas_)
    if (ca.key_blob == ca_key_blob) return &ca;
  return nullptr;
}

const Identity* IdentityKeys::find(std::string_view key_blob) const {
  auto it = by_blob_.find(std::string(key_blob));
  return it == by_blob_.end() ? nullptr : &it->second;
}

}  // namespace castgate
