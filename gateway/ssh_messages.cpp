#include "gateway/ssh_messages.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace castgate::ssh {

PtyRequest pty_request(ssh_message m) {
  const char* term = ssh_message_channel_request_pty_term(m);
  return PtyRequest{term ? term : "", ssh_message_channel_request_pty_width(m),
                    ssh_message_channel_request_pty_height(m)};
}

ssh_key auth_pubkey(ssh_message m) {
  return ssh_message_auth_pubkey(m);
}

int auth_pubkey_state(ssh_message m) {
  return ssh_message_auth_publickey_state(m);
}

const char* auth_password(ssh_message m) {
  return ssh_message_auth_password(m);
}

}  // namespace castgate::ssh

#pragma GCC diagnostic pop
