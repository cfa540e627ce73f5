// libssh keys as castgate hands them around: a key's public blob (what identities, bindings and
// certificates name), and a private key copied into a handle of one's own.
#pragma once

#include <string>

#include "gateway/ssh_handles.h"

namespace castgate::ssh {

// The public key blob of `key` (a certificate's for a certificate key), or empty.
std::string public_key_blob(ssh_key key);
// A copy of the private key `key` that the caller owns; null if it cannot be copied.
Key copy_private_key(ssh_key key);

}  // namespace castgate::ssh
