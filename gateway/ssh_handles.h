// RAII owners for libssh handles. No ssh_*_free call appears outside this file. Members holding
// channels must be declared after (destroyed before) the session that owns them.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <memory>

#include "common/c_handle.h"

namespace castgate::ssh {

using Session = std::unique_ptr<ssh_session_struct, CFree<ssh_free>>;
using Channel = std::unique_ptr<ssh_channel_struct, CFree<ssh_channel_free>>;
using Event = std::unique_ptr<ssh_event_struct, CFree<ssh_event_free>>;
using Key = std::unique_ptr<ssh_key_struct, CFree<ssh_key_free>>;
using Bind = std::unique_ptr<ssh_bind_struct, CFree<ssh_bind_free>>;
using Message = std::unique_ptr<ssh_message_struct, CFree<ssh_message_free>>;
using String = std::unique_ptr<ssh_string_struct, CFree<ssh_string_free>>;
using CharPtr = std::unique_ptr<char, CFree<ssh_string_free_char>>;

}  // namespace castgate::ssh
