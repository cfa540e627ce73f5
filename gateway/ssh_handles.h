// RAII owners for libssh handles. No ssh_*_free call appears outside this file. Members holding
// channels must be declared after (destroyed before) the session that owns them.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <memory>

namespace castgate::ssh {

struct SessionDeleter {
  void operator()(ssh_session s) const noexcept { ssh_free(s); }
};
struct ChannelDeleter {
  void operator()(ssh_channel c) const noexcept { ssh_channel_free(c); }
};
struct EventDeleter {
  void operator()(ssh_event e) const noexcept { ssh_event_free(e); }
};
struct KeyDeleter {
  void operator()(ssh_key k) const noexcept { ssh_key_free(k); }
};
struct BindDeleter {
  void operator()(ssh_bind b) const noexcept { ssh_bind_free(b); }
};
struct MessageDeleter {
  void operator()(ssh_message m) const noexcept { ssh_message_free(m); }
};
struct StringDeleter {
  void operator()(ssh_string s) const noexcept { ssh_string_free(s); }
};
struct CharDeleter {
  void operator()(char* s) const noexcept { ssh_string_free_char(s); }
};

using Session = std::unique_ptr<ssh_session_struct, SessionDeleter>;
using Channel = std::unique_ptr<ssh_channel_struct, ChannelDeleter>;
using Event = std::unique_ptr<ssh_event_struct, EventDeleter>;
using Key = std::unique_ptr<ssh_key_struct, KeyDeleter>;
using Bind = std::unique_ptr<ssh_bind_struct, BindDeleter>;
using Message = std::unique_ptr<ssh_message_struct, MessageDeleter>;
using String = std::unique_ptr<ssh_string_struct, StringDeleter>;
using CharPtr = std::unique_ptr<char, CharDeleter>;

}  // namespace castgate::ssh
