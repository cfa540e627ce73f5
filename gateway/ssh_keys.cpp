#include "gateway/ssh_keys.h"

#include "common/encoding.h"

namespace castgate::ssh {

std::string public_key_blob(ssh_key key) {
  char* b64 = nullptr;
  if (!key || ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || !b64) return {};
  CharPtr owner(b64);
  auto blob = base64_decode(b64);
  return blob ? *blob : std::string();
}

Key copy_private_key(ssh_key key) {
  ssh_key copy = nullptr;
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key, nullptr, nullptr, nullptr, &b64) != SSH_OK) return nullptr;
  CharPtr owner(b64);
  if (ssh_pki_import_privkey_base64(b64, nullptr, nullptr, nullptr, &copy) != SSH_OK)
    return nullptr;
  return Key(copy);
}

}  // namespace castgate::ssh
