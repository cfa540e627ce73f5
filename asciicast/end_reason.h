// Why a session or a channel ended: castgate.end_reason of session.end, connection.closed,
// channel.end and port_forward.close. One code per cause, listed in docs/events.md and, as an
// enum, in docs/events.schema.json (a unit test checks every value is there).
#pragma once

#include <string>
#include <string_view>

namespace castgate::asciicast {

// Numbered from 0 without gaps: the schema test walks the values until to_string has no name.
enum class EndReason {
  kClosed,                // no other cause was recorded
  kUserDisconnected,      // the user's connection went away
  kProtocolError,         // the user's client broke the SSH protocol
  kHandshakeFailed,       // the user's SSH handshake failed
  kPreauthTimeout,        // not signed in within --preauth-timeout
  kTooManyAuthFailures,   // too many failed sign-in attempts on one connection
  kSignInFailed,          // the identity provider refused the sign-in
  kSignInExpired,         // a connection without a target outlived its sign-in
  kGatewayFull,           // no room in the worker's session table
  kGatewayDraining,       // the gateway was stopping when the user signed in
  kGatewayShutdown,       // the gateway stopped
  kConfigReloaded,        // the configuration was reloaded
  kRefused,               // signed in, but may run nothing (policy, target unreachable)
  kLocked,                // an operator's lock matched the session
  kIdleTimeout,           // no traffic within --idle-timeout (or --jump-idle-timeout)
  kMaxSessionLength,      // a policy rule's max_session_length was reached
  kOutsideHours,          // a policy rule's hours closed
  kLimitExceeded,         // a limit against misbehaving peers was passed
  kRecordingUnavailable,  // the recording could not be written
  kTargetDisconnected,    // the connection to the target was lost
  kUpstreamFailed,        // the connection to the target could not be made (upstream.failed)
  kInternalError,         // an exception in castgate's code for this session
  kUserClosed,            // channels: the user closed the channel
  kTargetClosed,          // channels: the target closed the channel
  kCloseUnconfirmed,      // channels: a peer did not answer castgate's close in time
  kAcceptFailed,          // channels: castgate could not accept the user's channel
};

// The snake_case code written in castgate.end_reason; empty for a value that is not an
// EndReason.
std::string_view to_string(EndReason reason);

// An end with what event.reason says of it: `words` for a person where castgate has them (a
// channel the target closed), else the code again.
struct Ending {
  EndReason code = EndReason::kClosed;
  std::string words;
  std::string_view reason() const { return words.empty() ? to_string(code) : words; }
};

}  // namespace castgate::asciicast
