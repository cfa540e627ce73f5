#include "gateway/jump_channels.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/text.h"
#include "common/unique_fd.h"
#include "gateway/context.h"
#include "gateway/session.h"

namespace castgate {

using asciicast::EndReason;
using asciicast::EventKind;
using nlohmann::json;

namespace {
// Channels of one connection whose inner session is still signing in: each costs a key
// exchange, and none of them counts against --max-startups (the outer connection did).
constexpr size_t kMaxSigningIn = 4;
}  // namespace

JumpChannels::JumpChannels(ChannelHost& connection, SessionHost& host,
                           const std::atomic<bool>& retired)
    : connection_(connection), host_(host), retired_(retired) {}

bool JumpChannels::open(ssh::Message m, const Target& target, Outer outer, int id) {
  ssh_message msg = m.get();
  json where{{"castgate",
              {{"jump",
                {{"target", target.name},
                 {"host", printable(ssh_message_channel_request_open_destination(msg), 255)},
                 {"port", ssh_message_channel_request_open_destination_port(msg)}}}}}};
  auto refuse = [&](const std::string& why) {
    connection_.log().emit(EventKind{"jump.denied", "failure", why}, std::move(where));
    ssh_message_reply_default(msg);
    return false;
  };
  if (std::string why = connection_.recording_refusal();
      !why.empty() && connection_.recording_enabled())
    return refuse(why);
  const auto& expires = outer.sign_in.expires;
  if (expires && connection_.clock().now() >= *expires)
    return refuse("this connection's sign-in expired at " + rfc3339_micros(*expires) +
                  "; connect again");
  if (signing_in() >= kMaxSigningIn)
    return refuse("too many ProxyJump connections signing in at once on this connection");
  // A new session under the rules this connection signed in with is not one that went on.
  if (retired_.load()) return refuse(GatewayContext::kRetiredMessage);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    return refuse(std::string("cannot create the inner connection: ") + strerror(errno));
  UniqueFd ours(sv[0]), theirs(sv[1]);
  outer.sign_in.target = target.name;
  outer.listener.target = target.name;
  // The host owns its end from the call on, whatever becomes of the inner session.
  std::string inner = host_.start_inner_session(theirs.release(), std::move(outer.listener),
                                                std::move(outer.peer), outer.sign_in);
  auto tunnel = std::make_unique<JumpTunnel>(connection_, host_.loop(), id, std::move(m),
                                             std::move(ours), inner, target.name);
  where["castgate"]["jump"]["session"] = inner;
  connection_.log().emit(EventKind{"jump.open", "success", ""}, std::move(where), id);
  last_end_.reset();
  JumpTunnel* t = tunnel.get();
  auto it = tunnels_.emplace(id, std::move(tunnel)).first;
  if (!t->accept()) {
    end(*t, "could not accept the client's channel");
    tunnels_.erase(it);
  }
  return true;
}

size_t JumpChannels::signing_in() const {
  size_t n = 0;
  for (const auto& [id, tunnel] : tunnels_) {
    Session* inner = host_.find(tunnel->inner_session());
    if (!inner || inner->signing_in()) ++n;  // not started yet counts too
  }
  return n;
}

void JumpChannels::step() {
  for (auto it = tunnels_.begin(); it != tunnels_.end();) {
    it->second->step();
    if (it->second->finished()) {
      end(*it->second, "closed");
      it = tunnels_.erase(it);
      last_end_ = connection_.clock().steady_now();
    } else {
      ++it;
    }
  }
}

void JumpChannels::close_all(const std::string& reason) {
  for (auto& [id, tunnel] : tunnels_) end(*tunnel, reason);
  tunnels_.clear();
}

void JumpChannels::end(JumpTunnel& tunnel, const std::string& reason) {
  connection_.channel_finished(tunnel.bytes_to_user(), tunnel.bytes_to_target(), std::nullopt,
                               std::nullopt);
  connection_.log().emit(
      EventKind{"jump.close", "", reason},
      json{{"castgate",
            {{"jump", {{"session", tunnel.inner_session()}}},
             {"bytes",
              {{"to_user", tunnel.bytes_to_user()}, {"to_target", tunnel.bytes_to_target()}}}}}},
      tunnel.id());
  tunnel.terminate();
}

std::optional<JumpChannels::IdleEnd> JumpChannels::idle_end(
    std::chrono::steady_clock::time_point now,
    std::optional<std::chrono::system_clock::time_point> sign_in_expires) const {
  if (!last_end_) return std::nullopt;
  const auto timeout = connection_.config().jump_idle_timeout;
  if (now - *last_end_ > timeout)
    return IdleEnd{EndReason::kIdleTimeout, "no ProxyJump channel for " +
                                                std::to_string(timeout.count()) +
                                                " seconds; the connection was closed"};
  if (sign_in_expires && connection_.clock().now() >= *sign_in_expires)
    return IdleEnd{EndReason::kSignInExpired, "the sign-in of this connection expired"};
  return std::nullopt;
}

}  // namespace castgate
