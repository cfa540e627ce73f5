// What an SSH channel is, in the record: its type (castgate.channel_type) and, for a session
// channel, what runs in it (castgate.channel_kind). Listed in docs/events.md and, as enums, in
// docs/events.schema.json (a unit test checks every value is there).
#pragma once

#include <string_view>

namespace castgate::asciicast {

// Numbered from 0 without gaps: the schema test walks the values until to_string has no name.
enum class ChannelType {
  kSession,      // "session": a shell, a command or a subsystem
  kDirectTcpip,  // "direct-tcpip": a local port forward (ssh -L, -W)
};

// What a session channel runs (its shell, exec or subsystem request). Numbered from 0 without gaps.
enum class ChannelKind { kShell, kExec, kSubsystem };

// The names in the record; empty for a value that is not one of the enum's.
std::string_view to_string(ChannelType type);
std::string_view to_string(ChannelKind kind);

}  // namespace castgate::asciicast
