// Accessors for queued libssh server messages. libssh marks several of them deprecated in
// favour of callbacks, but callbacks must answer before they return; castgate answers later
// (after the target or the identity provider has answered), so it keeps the message and reads it
// here. This is the only place that silences the deprecation warnings.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <string>

namespace castgate::ssh {

struct PtyRequest {
  std::string term;
  int cols = 0, rows = 0;
};

PtyRequest pty_request(ssh_message m);
ssh_key auth_pubkey(ssh_message m);  // owned by the message
int auth_pubkey_state(ssh_message m);
const char* auth_password(ssh_message m);

}  // namespace castgate::ssh
