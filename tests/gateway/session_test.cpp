// Session's states, end to end inside the process: sign-in, routing, the connection to the
// target, channels and the one teardown, with a libssh client as the user and a libssh server as
// the target (tests/gateway/session_fixture.h). Each case checks the events the session wrote,
// in order, and why it ended.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "gateway/locks.h"
#include "gateway/session.h"
#include "tests/gateway/session_fixture.h"

using namespace castgate;
using castgate::testing::PeerChannel;
using castgate::testing::SessionRig;

namespace {

// Signs in as alice and runs `command` on web1; returns the user's channel, open and relaying.
PeerChannel& session_rig_exec(SessionRig& rig, const std::string& command) {
  REQUIRE(rig.sign_in() == SSH_AUTH_SUCCESS);
  REQUIRE(rig.open_channel() == SSH_OK);
  PeerChannel& user = *rig.user_channels.back();
  REQUIRE(rig.exec(user, command) == SSH_OK);
  REQUIRE(rig.target.channel() != nullptr);
  REQUIRE(rig.target.first()->commands == std::vector<std::string>{command});
  return user;
}

// Opens a channel and asks for a command, on a session that may run nothing: the channel is
// accepted only to tell the user `why` on stderr, then closed with exit status 1.
void session_rig_expect_refusal(SessionRig& rig, const std::string& why) {
  REQUIRE(rig.open_channel() == SSH_OK);
  PeerChannel& user = *rig.user_channels.back();
  REQUIRE(rig.exec(user, "id") == SSH_OK);
  rig.until([&] { return user.closed && rig.count("channel.end") == 1; });
  CHECK(user.out.empty());
  CHECK(user.err.find(why) != std::string::npos);
  CHECK(user.exit_status == 1);
  CHECK(rig.event("channel.end")["castgate"]["end_reason"] == "refused");
}

// A port on 127.0.0.1 that refuses connections: bound, never listening, held while it lives.
struct SessionRigClosedPort {
  UniqueFd fd{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  int port = 0;
  SessionRigClosedPort() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
};

}  // namespace

TEST_CASE("Session: sign-in, route, upstream, an exec channel relayed both ways, then the end") {
  SessionRig rig;
  std::string id = rig.connect();
  rig.handshake();
  PeerChannel& user = session_rig_exec(rig, "greet");
  PeerChannel& target = *rig.target.channel();
  CHECK(rig.target.accepted() == 1);

  target.write("hello from web1\n");
  rig.until([&] { return user.out == "hello from web1\n"; });
  user.write("ping\n");
  rig.until([&] { return target.out == "ping\n"; });

  REQUIRE(ssh_channel_request_send_exit_status(target.get(), 0) == SSH_OK);
  REQUIRE(ssh_channel_send_eof(target.get()) == SSH_OK);
  target.close();
  rig.until([&] { return user.closed && rig.count("channel.end") == 1; });
  CHECK(user.order == "out:hello from web1\n|exit-status 0|eof|close|");
  CHECK(rig.live_sessions() == 1);  // the connection outlives its channel, as with OpenSSH

  rig.user_disconnect();
  REQUIRE(rig.until_ended());
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success session.start upstream.connected "
        "command channel.end session.end");
  auto auth = rig.event("auth.success");
  CHECK(auth["user"]["name"] == "alice");
  CHECK(auth["castgate"]["auth_method"] == "publickey");
  CHECK(rig.event("session.start")["castgate"]["rules"] == nlohmann::json::array({"alice-web"}));
  auto connected = rig.event("upstream.connected")["castgate"]["upstream"];
  CHECK(connected["address"] == "127.0.0.1:" + std::to_string(rig.target.port()));
  CHECK(connected["credential"] == "static key");
  CHECK(rig.event("command")["process"]["command_line"] == "greet");
  CHECK(rig.event("channel.end")["castgate"]["end_reason"] == "target_closed");
  auto end = rig.event("session.end");
  CHECK(end["castgate"]["session"] == id);
  CHECK(end["castgate"]["end_reason"] == "user_disconnected");
  CHECK(end["castgate"]["bytes"]["to_user"] == 16);
  CHECK(end["castgate"]["bytes"]["to_target"] == 5);
  CHECK(end["process"]["exit_code"] == 0);
  CHECK(end["castgate"]["channels"] == 1);
  CHECK(end["castgate"]["final"] == true);
  CHECK(end["castgate"].contains("sig"));  // signed by the (in-process) signer
  CHECK(rig.count("connection.closed") == 0);
}

TEST_CASE("Session: a key nobody registered is refused, and nothing connects to the target") {
  SessionRig rig;
  rig.context.config.max_auth_attempts = 1;
  rig.connect();
  rig.handshake();
  ssh_key raw = nullptr;
  REQUIRE(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) == SSH_OK);
  ssh::Key stranger(raw);
  CHECK(rig.sign_in(stranger.get()) != SSH_AUTH_SUCCESS);
  REQUIRE(rig.until_ended());

  CHECK(rig.actions() == "connection.accepted connection.handshake auth.failure connection.closed");
  auto failure = rig.event("auth.failure");
  CHECK(failure["castgate"]["auth_method"] == "publickey");
  CHECK(failure["event"]["reason"].get<std::string>().starts_with("unknown public key SHA256:"));
  CHECK(failure["user"]["name"] == "ubuntu");
  CHECK(failure["destination"]["address"] == "web1");
  CHECK(rig.event("connection.closed")["castgate"]["end_reason"] == "too_many_auth_failures");
  CHECK(rig.target.accepted() == 0);
}

TEST_CASE("Session: a route the rules deny is recorded, refused to the user, never connected") {
  SessionRig rig;
  std::string ssh_user, denial, message;
  SUBCASE("a target nobody configured") {
    ssh_user = "ubuntu@nosuch";
    denial = "unknown_target";
    message = "the target nosuch is not configured on this gateway";
  }
  SUBCASE("a login no rule grants") {
    ssh_user = "root@web1";
    denial = "policy";
    message = "may not log in to web1 as root";
  }
  std::string id = rig.connect(ssh_user);
  rig.handshake();
  REQUIRE(rig.sign_in() == SSH_AUTH_SUCCESS);
  session_rig_expect_refusal(rig, message);

  // Signed in but refused: the connection lingers a while (the user reads why), then ends.
  rig.tick_ahead(id, std::chrono::seconds(10));
  CHECK(rig.count("connection.closed") == 0);
  rig.tick_ahead(id, std::chrono::seconds(31));
  REQUIRE(rig.until_ended());
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success policy.denied channel.end "
        "connection.closed");
  auto denied = rig.event("policy.denied");
  CHECK(denied["castgate"]["denial"] == denial);
  CHECK(denied["event"]["reason"].get<std::string>().find(message) != std::string::npos);
  CHECK(rig.event("connection.closed")["castgate"]["end_reason"] == "refused");
  CHECK(rig.target.accepted() == 0);
}

TEST_CASE("Session: a target whose host key is not the pinned one is refused before sign-in") {
  SessionRig rig;
  std::string code, message;
  SUBCASE("no key pinned for it") {
    rig.context.known_hosts = KnownHosts::parse("", "empty known_hosts");
    code = "host_key_unknown";
    message = "no host key is pinned for web1";
  }
  SUBCASE("another key pinned for it") {
    castgate::testing::TestTarget impostor;  // only its key: pinned for web1's address
    std::string line = impostor.known_hosts_line();
    line.replace(0, line.find(' '), KnownHosts::host_name_for("127.0.0.1", rig.target.port()));
    rig.context.known_hosts = KnownHosts::parse(line, "other known_hosts");
    code = "host_key_mismatch";
    message = "does not match the key pinned for it";
  }
  std::string id = rig.connect();
  rig.handshake();
  // The target answers once the user's channel is held for it (ChannelPair's
  // kWaitingForUpstream): the failure refuses a channel that waits.
  rig.target.pause_for(std::chrono::milliseconds(200));
  REQUIRE(rig.sign_in() == SSH_AUTH_SUCCESS);
  session_rig_expect_refusal(rig, message);
  // The target saw the key exchange, and nothing of the user: no sign-in, no channel.
  REQUIRE(rig.target.accepted() == 1);
  CHECK(!rig.target.first()->signed_in);
  CHECK(rig.target.channel() == nullptr);

  rig.tick_ahead(id, std::chrono::seconds(31));
  REQUIRE(rig.until_ended());
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success session.start upstream.failed "
        "channel.end session.end");
  auto failed = rig.event("upstream.failed");
  CHECK(failed["castgate"]["upstream"]["error"] == code);
  CHECK(failed["event"]["reason"].get<std::string>().find(message) != std::string::npos);
  auto end = rig.event("session.end");
  CHECK(end["castgate"]["end_reason"] == "refused");
  CHECK(end["castgate"]["bytes"]["to_target"] == 0);
}

TEST_CASE("Session: a target that refuses the connection fails upstream; a later channel is told") {
  SessionRigClosedPort closed;
  SessionRig rig;
  Target unreachable = *rig.context.targets.find("web1");
  unreachable.name = "web2";
  unreachable.port = closed.port;
  rig.context.targets.add(unreachable);
  rig.context.policy = Policy::parse(
      R"({"rules": [{"name": "alice-web", "identities": ["alice"], "targets": ["web*"],
                     "logins": ["ubuntu"]}]})",
      "test policy");
  rig.connect("ubuntu@web2");
  rig.handshake();
  REQUIRE(rig.sign_in() == SSH_AUTH_SUCCESS);
  rig.until([&] { return rig.count("upstream.failed") == 1; });
  // The channel opens after the failure: it is refused with the reason at once.
  session_rig_expect_refusal(rig, "cannot connect to web2");

  rig.user_disconnect();
  REQUIRE(rig.until_ended());
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success session.start upstream.failed "
        "channel.end session.end");
  CHECK(rig.event("upstream.failed")["castgate"]["upstream"]["error"] == "target_unreachable");
  CHECK(rig.event("session.end")["castgate"]["end_reason"] == "user_disconnected");
  CHECK(rig.target.accepted() == 0);
}

TEST_CASE("Session: the user goes away mid-channel; the target's channel is closed") {
  SessionRig rig;
  rig.connect();
  rig.handshake();
  PeerChannel& user = session_rig_exec(rig, "top");
  PeerChannel& target = *rig.target.channel();
  target.write("load 0.1\n");
  rig.until([&] { return user.out == "load 0.1\n"; });

  rig.user_disconnect();
  REQUIRE(rig.until_ended());
  rig.until([&] { return target.closed || rig.target.first()->gone; });
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success session.start upstream.connected "
        "command channel.end session.end");
  CHECK(rig.event("channel.end")["castgate"]["end_reason"] == "user_disconnected");
  auto end = rig.event("session.end");
  CHECK(end["castgate"]["end_reason"] == "user_disconnected");
  CHECK(end["castgate"]["bytes"]["to_user"] == 9);
}

TEST_CASE("Session: the target goes away mid-channel; the user is told and disconnected") {
  SessionRig rig;
  rig.connect();
  rig.handshake();
  PeerChannel& user = session_rig_exec(rig, "top");
  rig.target.channel()->write("load 0.1\n");
  rig.until([&] { return user.out == "load 0.1\n"; });

  rig.target.disconnect();
  REQUIRE(rig.until_ended());
  rig.until([&] { return user.closed || !ssh_is_connected(rig.user.get()); });
  CHECK(rig.actions() ==
        "connection.accepted connection.handshake auth.success session.start upstream.connected "
        "command channel.end session.end");
  CHECK(rig.event("channel.end")["castgate"]["end_reason"] == "target_disconnected");
  CHECK(rig.event("session.end")["castgate"]["end_reason"] == "target_disconnected");
  CHECK(user.err.find("the connection to web1 was lost") != std::string::npos);
}

TEST_CASE("Session: a connection that ends while signing in ends once, as connection.closed") {
  SessionRig rig;
  std::string id = rig.connect();
  std::string reason;
  SUBCASE("the user drops during the key exchange") {
    CHECK(ssh_connect(rig.user.get()) == SSH_AGAIN);  // its banner sent, no more
    rig.user.reset();                                 // libssh closes the user's socket
    reason = "handshake_failed";
  }
  SUBCASE("the user drops before signing in") {
    rig.handshake();
    rig.user_disconnect();
    reason = "user_disconnected";
  }
  SUBCASE("the gateway closes it twice, then the user drops too") {
    rig.handshake();
    rig.on_loop([&] {
      rig.worker->run_in_session(id, [](Session& s) {
        s.close(asciicast::EndReason::kGatewayShutdown, "castgate is stopping");
        s.close(asciicast::EndReason::kLocked, "locked");  // the first reason stands
      });
    });
    rig.user_disconnect();
    reason = "gateway_shutdown";
  }
  SUBCASE("not signed in within the pre-auth timeout") {
    rig.handshake();
    rig.tick_ahead(id, std::chrono::seconds(29));
    CHECK(rig.count("connection.closed") == 0);
    rig.tick_ahead(id, std::chrono::seconds(31));
    reason = "preauth_timeout";
  }
  SUBCASE("the configuration was reloaded") {
    rig.handshake();
    rig.worker->retire_all();
    reason = "config_reloaded";
  }
  REQUIRE(rig.until_ended());
  rig.pump();
  CHECK(rig.count("connection.closed") == 1);
  CHECK(rig.count("session.end") == 0);
  CHECK(rig.count("auth.success") == 0);
  CHECK(rig.event("connection.closed")["castgate"]["end_reason"] == reason);
  CHECK(rig.events().back()["event"]["action"] == "connection.closed");
  CHECK(rig.target.accepted() == 0);
}

TEST_CASE("Session: a channel past max_channels is refused; the first one goes on") {
  SessionRig rig;
  rig.context.config.max_channels = 1;
  rig.connect();
  rig.handshake();
  PeerChannel& first = session_rig_exec(rig, "top");
  CHECK(rig.open_channel() != SSH_OK);
  CHECK(rig.event("channel.open_failed")["event"]["reason"] ==
        "too many channels on one connection");

  rig.target.channel()->write("still here\n");
  rig.until([&] { return first.out == "still here\n"; });
  // A reload leaves a signed-in session with a target alone: it goes on under its rules.
  rig.worker->retire_all();
  rig.target.channel()->write("and here\n");
  rig.until([&] { return first.out == "still here\nand here\n"; });
  CHECK(rig.count("session.end") == 0);

  rig.worker->enforce_locks(std::make_shared<const Locks>(
      Locks::parse(R"({"locks": [{"targets": ["web1"], "reason": "maintenance"}]})", "locks")));
  REQUIRE(rig.until_ended());
  rig.until([&] { return first.closed; });
  CHECK(first.err.find("access locked by an administrator: maintenance") != std::string::npos);
  CHECK(rig.event("channel.end")["castgate"]["end_reason"] == "locked");
  CHECK(rig.event("session.end")["castgate"]["end_reason"] == "locked");
  CHECK(rig.count("session.end") == 1);
}
