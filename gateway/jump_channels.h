// The ProxyJump channels of one connection (jump_tunnel.h serves one): opening them under the
// connection's sign-in and limits, their end events, and how long a connection without a target
// may idle between them (a ControlMaster between commands). The session owns them, next to its
// channel pairs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "gateway/authenticator.h"
#include "gateway/channel_pair.h"
#include "gateway/config.h"
#include "gateway/jump_tunnel.h"
#include "gateway/session_host.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"

namespace castgate {

class JumpChannels {
 public:
  // Where a channel's inner session starts from: the outer connection's listener and peer, and
  // its sign-in (all of JumpOrigin but the target, which the channel names).
  struct Outer {
    ListenSpec listener;
    asciicast::Endpoint peer;
    JumpOrigin sign_in;
  };
  // Why a connection whose last channel closed ends now.
  struct IdleEnd {
    asciicast::EndReason reason;
    std::string message;
  };

  // `connection` is the session as each of its channels sees it: the log, the clock, the
  // recording's health and the byte totals. `host` starts each channel's inner session and finds
  // it again by id. `retired`: no new inner session starts once it is set (GatewayContext).
  JumpChannels(ChannelHost& connection, SessionHost& host, const std::atomic<bool>& retired);
  JumpChannels(const JumpChannels&) = delete;
  JumpChannels& operator=(const JumpChannels&) = delete;

  // A direct-tcpip open request for `target`'s SSH address: refused (jump.denied), or opened
  // (jump.open) as channel `id`, with an inner session started from `outer`. Returns whether `id`
  // was taken.
  bool open(ssh::Message m, const Target& target, Outer outer, int id);
  // Moves every channel's bytes on; a channel that finished is ended ("closed").
  void step();
  // Ends every channel now, each with its jump.close event (`reason`): the inner sessions see
  // their socket close and end on their own.
  void close_all(const std::string& reason);

  bool empty() const { return tunnels_.empty(); }
  size_t size() const { return tunnels_.size(); }
  // When the last channel closed, if one did and none opened since.
  std::optional<std::chrono::steady_clock::time_point> idle_since() const { return last_end_; }
  // Past --jump-idle-timeout since the last channel closed, or the sign-in (which ends when
  // `sign_in_expires` passes) ended since: why the connection ends. Only once a channel closed.
  std::optional<IdleEnd> idle_end(
      std::chrono::steady_clock::time_point now,
      std::optional<std::chrono::system_clock::time_point> sign_in_expires) const;

 private:
  // Channels whose inner session has not signed in yet (or not started yet).
  size_t signing_in() const;
  void end(JumpTunnel& tunnel, const std::string& reason);

  ChannelHost& connection_;
  SessionHost& host_;
  const std::atomic<bool>& retired_;
  std::map<int, std::unique_ptr<JumpTunnel>> tunnels_;
  std::optional<std::chrono::steady_clock::time_point> last_end_;
};

}  // namespace castgate
