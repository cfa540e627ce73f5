// JumpChannels driven in-process: a libssh client as the user opening direct-tcpip channels,
// castgate's end of the user's connection (tests/gateway/ssh_loopback.h), and around them two
// stand-ins: ChannelTestHost for the session the channels belong to (its log in memory, a
// manual clock) and JumpTestHost for the worker, which keeps each inner session's end of the
// socketpair instead of starting a session on it. The end-to-end tests run the same paths with
// OpenSSH's ProxyJump and real inner sessions; these pin the limit on channels signing in, the
// idle bookkeeping and the byte totals in milliseconds.
#include "gateway/jump_channels.h"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/unique_fd.h"
#include "gateway/context.h"
#include "tests/gateway/channel_test_host.h"
#include "tests/gateway/ssh_loopback.h"

namespace castgate {
namespace {

using castgate::testing::ChannelTestHost;
using castgate::testing::PeerChannel;
using castgate::testing::SshLoopback;

// The worker, reduced to what starting an inner session hands over: it keeps the inner end of
// each socketpair and starts nothing, so no inner session is ever found (each counts as still
// signing in).
class JumpTestHost final : public SessionHost {
 public:
  std::vector<UniqueFd> inner_ends;
  std::vector<JumpOrigin> origins;
  std::vector<ListenSpec> listeners;

  EventLoop& loop() override { return loop_; }
  void run_in_session(const std::string&, const std::function<void(Session&)>&) override {}
  ssh_bind bind() override { return nullptr; }
  void session_finished(const std::string&) override {}
  std::string start_inner_session(int fd, ListenSpec listener, asciicast::Endpoint,
                                  const JumpOrigin& origin) override {
    inner_ends.emplace_back(fd);
    origins.push_back(origin);
    listeners.push_back(std::move(listener));
    return "inner" + std::to_string(inner_ends.size());
  }
  Session* find(const std::string&) override { return nullptr; }
  std::function<void()> make_waker(const std::string&) override {
    return [] {};
  }

 private:
  EventLoop loop_;  // watched, never run: the test steps the channels itself
};

// The user's connection with its ProxyJump channels. step() plays the part of Session: it hands
// each direct-tcpip open to the channels and steps them after every round of I/O.
struct JumpTestRig {
  ChannelTestHost connection;
  JumpTestHost host;
  std::atomic<bool> retired{false};
  Target target;
  std::optional<std::chrono::system_clock::time_point> expires;
  int next_channel_id = 0;
  SshLoopback user_link;  // client: the user; server: castgate's end towards the user
  std::vector<std::unique_ptr<PeerChannel>> users;  // the user's channels, in order
  JumpChannels jumps{connection, host, retired};    // declared last: freed before the sessions

  JumpTestRig() {
    target.name = "db1.int";
    target.host = "10.0.0.5";
  }

  JumpChannels::Outer outer() const {
    JumpChannels::Outer o{
        ListenSpec{"127.0.0.1", 22, ""}, asciicast::Endpoint{"192.0.2.7", 50000}, {}};
    o.sign_in.outer_session = "outer1";
    o.sign_in.expires = expires;
    return o;
  }

  void step() {
    user_link.poll();
    for (auto& m : user_link.take_server_messages()) {
      if (ssh_message_type(m.get()) == SSH_REQUEST_CHANNEL_OPEN &&
          ssh_message_subtype(m.get()) == SSH_CHANNEL_DIRECT_TCPIP) {
        if (jumps.open(std::move(m), target, outer(), next_channel_id)) ++next_channel_id;
      } else {
        ssh_message_reply_default(m.get());
      }
    }
    jumps.step();
  }
  bool until(const std::function<bool()>& done) {
    return testing::pump_until([this] { step(); }, done);
  }

  // The user opens a ProxyJump channel to db1.int:22; libssh's answer (SSH_OK once accepted).
  int open() {
    users.push_back(
        std::make_unique<PeerChannel>(ssh::Channel(ssh_channel_new(user_link.client()))));
    ssh_channel ch = users.back()->get();
    int rc = SSH_AGAIN;
    until([&] {
      return (rc = ssh_channel_open_forward(ch, "db1.int", 22, "127.0.0.1", 40000)) != SSH_AGAIN;
    });
    return rc;
  }

  std::string denial() const {
    auto denied = connection.events("jump.denied");
    REQUIRE(denied.size() == 1);
    return denied.front()["event"]["reason"].get<std::string>();
  }
};

TEST_CASE("JumpChannels: at most four channels of a connection sign in at once") {
  JumpTestRig rig;
  for (int i = 0; i < 4; ++i) REQUIRE(rig.open() == SSH_OK);
  CHECK(rig.jumps.size() == 4);
  CHECK(rig.connection.events("jump.open").size() == 4);
  REQUIRE(rig.host.inner_ends.size() == 4);
  CHECK(rig.host.origins.front().target == "db1.int");
  CHECK(rig.host.origins.front().outer_session == "outer1");
  CHECK(rig.host.listeners.front().target == "db1.int");

  CHECK(rig.open() == SSH_ERROR);
  CHECK(rig.denial() == "too many ProxyJump connections signing in at once on this connection");
  CHECK(rig.jumps.size() == 4);
  CHECK(rig.host.inner_ends.size() == 4);  // no inner session was started for it
  CHECK(rig.next_channel_id == 4);         // and it took no channel number
}

TEST_CASE("JumpChannels: no new inner session after a reload or past the sign-in") {
  SUBCASE("the configuration was reloaded") {
    JumpTestRig rig;
    rig.retired = true;
    CHECK(rig.open() == SSH_ERROR);
    CHECK(rig.denial() == GatewayContext::kRetiredMessage);
    CHECK(rig.host.inner_ends.empty());
  }
  SUBCASE("the outer sign-in expired") {
    JumpTestRig rig;
    rig.expires = rig.connection.manual_clock().now();
    CHECK(rig.open() == SSH_ERROR);
    CHECK(rig.denial().starts_with("this connection's sign-in expired at "));
    CHECK(rig.host.inner_ends.empty());
  }
}

TEST_CASE("JumpChannels: a channel's bytes reach the connection's totals when it closes") {
  JumpTestRig rig;
  REQUIRE(rig.open() == SSH_OK);
  int inner = rig.host.inner_ends.at(0).get();
  rig.users[0]->write("hello");
  std::string got;
  rig.until([&] {
    char buf[64];
    ssize_t n = ::recv(inner, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    return got == "hello";
  });
  REQUIRE(::send(inner, "world!", 6, MSG_NOSIGNAL) == 6);
  rig.until([&] { return rig.users[0]->out == "world!"; });

  rig.host.inner_ends[0].reset();  // the inner session ends
  rig.until([&] { return rig.jumps.empty() && rig.users[0]->closed; });
  auto closes = rig.connection.events("jump.close");
  REQUIRE(closes.size() == 1);
  CHECK(closes[0]["event"]["reason"] == "closed");
  CHECK(closes[0]["castgate"]["jump"]["session"] == "inner1");
  CHECK(closes[0]["castgate"]["bytes"]["to_target"] == 5);
  CHECK(closes[0]["castgate"]["bytes"]["to_user"] == 6);
  CHECK(rig.connection.bytes_to_target == 5);
  CHECK(rig.connection.bytes_to_user == 6);
}

TEST_CASE("JumpChannels: after its last channel a connection idles for --jump-idle-timeout") {
  JumpTestRig rig;
  auto& clock = rig.connection.manual_clock();
  rig.connection.gateway_config.jump_idle_timeout = std::chrono::seconds(60);
  CHECK(!rig.jumps.idle_since());
  CHECK(!rig.jumps.idle_end(clock.steady_now(), std::nullopt));  // no channel closed yet

  REQUIRE(rig.open() == SSH_OK);
  rig.host.inner_ends[0].reset();
  rig.until([&] { return rig.jumps.empty(); });
  REQUIRE(rig.jumps.idle_since());
  CHECK(*rig.jumps.idle_since() == clock.steady_now());

  clock.advance(std::chrono::seconds(60));
  CHECK(!rig.jumps.idle_end(clock.steady_now(), std::nullopt));
  clock.advance(std::chrono::seconds(1));
  auto end = rig.jumps.idle_end(clock.steady_now(), std::nullopt);
  REQUIRE(end);
  CHECK(end->reason == asciicast::EndReason::kIdleTimeout);
  CHECK(end->message == "no ProxyJump channel for 60 seconds; the connection was closed");

  // A new channel: no longer idle.
  REQUIRE(rig.open() == SSH_OK);
  CHECK(!rig.jumps.idle_since());
  CHECK(!rig.jumps.idle_end(clock.steady_now(), std::nullopt));
}

TEST_CASE("JumpChannels: an idle connection ends when its sign-in does") {
  JumpTestRig rig;
  auto& clock = rig.connection.manual_clock();
  REQUIRE(rig.open() == SSH_OK);
  rig.host.inner_ends[0].reset();
  rig.until([&] { return rig.jumps.empty(); });

  auto expires = clock.now() + std::chrono::seconds(10);
  CHECK(!rig.jumps.idle_end(clock.steady_now(), expires));
  clock.advance(std::chrono::seconds(10));
  auto end = rig.jumps.idle_end(clock.steady_now(), expires);
  REQUIRE(end);
  CHECK(end->reason == asciicast::EndReason::kSignInExpired);
  CHECK(end->message == "the sign-in of this connection expired");
}

TEST_CASE("JumpChannels: closing them all ends each with the connection's reason") {
  JumpTestRig rig;
  REQUIRE(rig.open() == SSH_OK);
  REQUIRE(rig.open() == SSH_OK);
  rig.jumps.close_all("user_disconnected");
  CHECK(rig.jumps.empty());
  auto closes = rig.connection.events("jump.close");
  REQUIRE(closes.size() == 2);
  CHECK(closes[0]["event"]["reason"] == "user_disconnected");
  CHECK(closes[1]["event"]["reason"] == "user_disconnected");
  CHECK(!rig.jumps.idle_since());  // closed by the connection, not idle between channels
  // The inner sessions see their socket close.
  char c;
  CHECK(::recv(rig.host.inner_ends[0].get(), &c, 1, MSG_DONTWAIT) == 0);
  CHECK(::recv(rig.host.inner_ends[1].get(), &c, 1, MSG_DONTWAIT) == 0);
}

}  // namespace
}  // namespace castgate
