// ChannelPair's states driven in-process: a libssh client as the user, a libssh server as the
// target, castgate's two ends between them (tests/gateway/ssh_loopback.h), and the session the
// pair lives in replaced by ChannelTestHost, which records into memory. The end-to-end tests cover
// the same paths with OpenSSH peers; these pin the half-close rules, fail-closed recording and
// flow control in milliseconds.
#include "gateway/channel_pair.h"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "common/clock.h"
#include "tests/gateway/channel_test_host.h"
#include "tests/gateway/ssh_loopback.h"

namespace castgate {
namespace {

using castgate::testing::ChannelTestHost;
using castgate::testing::PeerChannel;
using castgate::testing::SshLoopback;
using nlohmann::json;

// The user, castgate's two ends and the target, with the pair for the user's first session
// channel. step() plays the part of Session: it hands the pair the user's channel open and
// requests, and steps it after every round of I/O.
struct PairTestRig {
  ChannelTestHost host;
  SshLoopback user_link;    // client: the user; server: castgate's end towards the user
  SshLoopback target_link;  // client: castgate's end towards the target; server: the target
  bool target_refuses_open = false;
  bool target_refuses_requests = false;
  // Peers answer a CLOSE with theirs, as OpenSSH's ssh and sshd do.
  bool user_answers_close = true, target_answers_close = true;
  std::string refuse_with;      // non-empty: the pair is told to refuse(), as for a denied session
  std::string target_requests;  // what the target was asked: "exec CMD|shell|..."
  std::unique_ptr<PeerChannel> user;    // the user's channel
  std::unique_ptr<PeerChannel> target;  // the target's end, once it accepted the open
  std::unique_ptr<ChannelPair> pair;    // declared last: freed before the channels' sessions

  PairTestRig() { host.upstream = target_link.client(); }

  void step() {
    user_link.poll();
    target_link.poll();
    for (auto& m : user_link.take_server_messages()) {
      int type = ssh_message_type(m.get());
      if (type == SSH_REQUEST_CHANNEL_OPEN && !pair &&
          ssh_message_subtype(m.get()) == SSH_CHANNEL_SESSION) {
        pair = std::make_unique<ChannelPair>(host, 0, ChannelType::kSession, std::move(m));
        if (refuse_with.empty())
          pair->open_upstream();
        else
          pair->refuse(refuse_with);
      } else if (type == SSH_REQUEST_CHANNEL && pair &&
                 ssh_message_channel_request_channel(m.get()) == pair->downstream()) {
        pair->on_downstream_request(std::move(m));
      } else {
        ssh_message_reply_default(m.get());
      }
    }
    for (auto& m : target_link.take_server_messages()) {
      int type = ssh_message_type(m.get());
      if (type == SSH_REQUEST_CHANNEL_OPEN && !target && !target_refuses_open) {
        ssh_channel ch = ssh_message_channel_request_open_reply_accept(m.get());
        REQUIRE(ch != nullptr);
        target = std::make_unique<PeerChannel>(ssh::Channel(ch));
      } else if (type == SSH_REQUEST_CHANNEL) {
        int subtype = ssh_message_subtype(m.get());
        if (subtype == SSH_CHANNEL_REQUEST_EXEC) {
          const char* cmd = ssh_message_channel_request_command(m.get());
          target_requests += std::string("exec ") + (cmd ? cmd : "") + "|";
        } else if (subtype == SSH_CHANNEL_REQUEST_SHELL) {
          target_requests += "shell|";
        } else {
          target_requests += "other|";
        }
        if (target_refuses_requests)
          ssh_message_reply_default(m.get());
        else
          ssh_message_channel_request_reply_success(m.get());
      } else {
        ssh_message_reply_default(m.get());
      }
    }
    if (user && user->closed && user_answers_close) user->close();
    if (target && target->closed && target_answers_close) target->close();
    if (pair) pair->step();
  }

  bool until(const std::function<bool()>& done) {
    return testing::pump_until([this] { step(); }, done);
  }
  // Runs `rounds` rounds of I/O, for checks that something does not happen.
  void rounds(int n) {
    for (int i = 0; i < n; ++i) step();
  }
  // Repeats a non-blocking libssh call of the user's until it is no longer SSH_AGAIN.
  int user_call(const std::function<int()>& call) {
    int rc = SSH_AGAIN;
    until([&] { return (rc = call()) != SSH_AGAIN; });
    return rc;
  }

  // The user opens a session channel; returns libssh's answer (SSH_OK once castgate accepted).
  int open() {
    user = std::make_unique<PeerChannel>(ssh::Channel(ssh_channel_new(user_link.client())));
    return user_call([&] { return ssh_channel_open_session(user->get()); });
  }
  // The user opens a channel and runs `command`; the target accepts both.
  void open_exec(const std::string& command) {
    REQUIRE(open() == SSH_OK);
    REQUIRE(user_call([&] { return ssh_channel_request_exec(user->get(), command.c_str()); }) ==
            SSH_OK);
    REQUIRE(target != nullptr);
    REQUIRE(pair->state() == ChannelPair::State::kOpen);
  }
  bool finished() const { return pair && pair->finished(); }
};

TEST_CASE("ChannelPair relays both ways and records in order") {
  PairTestRig rig;
  rig.open_exec("cat");
  CHECK(rig.target_requests == "exec cat|");

  rig.target->write("ready\n");
  rig.until([&] { return rig.user->out == "ready\n"; });
  rig.user->write("hello\n");
  rig.until([&] { return rig.target->out == "hello\n"; });
  rig.target->write("hello\n");
  rig.target->write_stderr("warning\n");
  rig.until([&] { return rig.user->out == "ready\nhello\n" && rig.user->err == "warning\n"; });

  // The input is held until the program answers (SecretAnswerMasker), then recorded before it.
  CHECK(rig.host.data_events() ==
        "asciicast.output:ready\n|asciicast.input:hello\n|asciicast.output:hello\n|"
        "asciicast.stderr:warning\n|");
  CHECK(rig.host.actions().starts_with("asciicast.header "));
  CHECK(rig.host.channels_finished == 0);
  CHECK(!rig.finished());
}

TEST_CASE("ChannelPair passes the user's EOF on and still relays the target's output") {
  PairTestRig rig;
  rig.open_exec("sort");
  rig.user->write("b\na\n");
  REQUIRE(ssh_channel_send_eof(rig.user->get()) == SSH_OK);
  rig.until([&] { return rig.target->eof; });
  CHECK(rig.target->out == "b\na\n");  // the data before the EOF
  CHECK(rig.target->order == "out:b\na\n|eof|");
  CHECK(!rig.target->closed);
  CHECK(!rig.user->eof);

  rig.target->write("a\nb\n");
  rig.until([&] { return rig.user->out == "a\nb\n"; });
  CHECK(rig.pair->state() == ChannelPair::State::kOpen);

  REQUIRE(ssh_channel_request_send_exit_status(rig.target->get(), 0) == SSH_OK);
  REQUIRE(ssh_channel_send_eof(rig.target->get()) == SSH_OK);
  rig.target->close();
  rig.until([&] { return rig.finished() && rig.user->closed; });
  CHECK(rig.user->exit_status == 0);
  CHECK(rig.host.end_event()["castgate"]["end_reason"] == "target_closed");
}

TEST_CASE("ChannelPair: the target closes first, its exit status reaches the user first") {
  PairTestRig rig;
  rig.open_exec("false");
  rig.target->write("bye\n");
  REQUIRE(ssh_channel_request_send_exit_status(rig.target->get(), 3) == SSH_OK);
  REQUIRE(ssh_channel_send_eof(rig.target->get()) == SSH_OK);
  rig.target->close();
  rig.until([&] { return rig.user->closed; });
  // Data, exit-status, EOF, then CLOSE (OpenSSH's order).
  CHECK(rig.user->order == "out:bye\n|exit-status 3|eof|close|");
  rig.until([&] { return rig.finished(); });
  CHECK(rig.target->closed);

  auto end = rig.host.end_event();
  CHECK(end["castgate"]["end_reason"] == "target_closed");
  CHECK(end["process"]["exit_code"] == 3);
  CHECK(end["castgate"]["channel_kind"] == "exec");
  CHECK(rig.host.actions().ends_with(" channel.end"));
  CHECK(rig.host.channels_finished == 1);
  CHECK(rig.host.finished_exit_status == 3);
  CHECK(rig.host.data_events() == "asciicast.output:bye\n|");
}

TEST_CASE("ChannelPair passes the target's exit signal on") {
  PairTestRig rig;
  rig.open_exec("sleep 100");
  REQUIRE(ssh_channel_request_send_exit_signal(rig.target->get(), "TERM", 0, "terminated", "") ==
          SSH_OK);
  rig.target->close();
  rig.until([&] { return rig.finished() && rig.user->closed; });
  CHECK(rig.user->order == "exit-signal TERM|eof|close|");
  CHECK(!rig.user->exit_status);
  auto end = rig.host.end_event();
  CHECK(end["castgate"]["exit_signal"] == "TERM");
  CHECK(!end.contains("process"));
}

TEST_CASE("ChannelPair: the user closes first") {
  PairTestRig rig;
  rig.target_answers_close = false;
  rig.open_exec("top");
  rig.user->close();
  rig.until([&] { return rig.target->closed; });
  rig.rounds(20);
  CHECK(!rig.finished());    // the target's CLOSE is still due,
  CHECK(!rig.user->closed);  // and the exit status that may come with it: the user waits
  REQUIRE(ssh_channel_request_send_exit_status(rig.target->get(), 130) == SSH_OK);
  rig.target->close();
  rig.until([&] { return rig.finished() && rig.user->closed; });
  CHECK(rig.user->order == "exit-status 130|eof|close|");  // libssh sends EOF before CLOSE
  auto end = rig.host.end_event();
  // Not "target closed the channel": the target's CLOSE only confirmed the user's.
  CHECK(end["castgate"]["end_reason"] == "user_closed");
  CHECK(end["process"]["exit_code"] == 130);
  CHECK(rig.host.channels_finished == 1);
}

TEST_CASE("ChannelPair: no recording, nothing runs (fail-closed)") {
  PairTestRig rig;
  rig.host.refusal = "session recording is unavailable, so nothing can run now";
  REQUIRE(rig.open() == SSH_OK);
  int rc = rig.user_call([&] { return ssh_channel_request_exec(rig.user->get(), "id"); });
  CHECK(rc != SSH_OK);
  rig.until([&] { return rig.user->closed; });
  CHECK(rig.target_requests == "");  // the command never reached the target
  CHECK(rig.user->err.find("session recording is unavailable") != std::string::npos);
  CHECK(rig.user->exit_status == 255);
  rig.until([&] { return rig.finished(); });
  CHECK(rig.host.end_event()["castgate"]["end_reason"] == "recording_unavailable");
  CHECK(rig.host.data_events() == "");
}

TEST_CASE("ChannelPair: once terminated, nothing more is relayed") {
  PairTestRig rig;
  rig.open_exec("tail -f log");
  rig.target->write("one\n");
  rig.until([&] { return rig.user->out == "one\n"; });
  // What Session does when its recording fails in the middle of a channel.
  rig.pair->terminate("session recording is unavailable, so the session was ended",
                      asciicast::Ending{asciicast::EndReason::kRecordingUnavailable, ""});
  rig.target->write("two\n");
  rig.until([&] { return rig.user->closed && rig.target->closed; });
  rig.rounds(20);
  CHECK(rig.user->out == "one\n");
  CHECK(rig.user->err == "castgate: session recording is unavailable, so the session was ended\n");
  CHECK(rig.user->exit_status == 255);
  CHECK(rig.host.data_events() ==
        "asciicast.output:one\n|"
        "asciicast.stderr:castgate: session recording is unavailable, so the session was ended\n|");
  rig.until([&] { return rig.finished(); });
  CHECK(rig.host.end_event()["castgate"]["end_reason"] == "recording_unavailable");
}

TEST_CASE("ChannelPair reads nothing while the recording has no room") {
  PairTestRig rig;
  rig.open_exec("yes");
  rig.host.room = false;
  rig.target->write("held\n");
  rig.user->write("typed\n");
  rig.rounds(50);
  CHECK(rig.user->out.empty());
  CHECK(rig.target->out.empty());
  CHECK(rig.host.data_events() == "");

  rig.host.room = true;
  rig.until([&] { return rig.user->out == "held\n" && rig.target->out == "typed\n"; });
  // The input is held by SecretAnswerMasker until the program answers it.
  CHECK(rig.host.data_events() == "asciicast.output:held\n|");
}

TEST_CASE("ChannelPair: the target refuses the channel") {
  PairTestRig rig;
  rig.target_refuses_open = true;
  CHECK(rig.open() == SSH_ERROR);
  CHECK(rig.finished());
  CHECK(rig.host.actions() == "channel.open_failed");
  auto failed = rig.host.events().front();
  CHECK(failed["event"]["outcome"] == "failure");
  CHECK(failed["castgate"]["channel_type"] == "session");
  CHECK(rig.host.channels_finished == 0);
}

TEST_CASE("ChannelPair: a refused session tells the user why and ends") {
  PairTestRig rig;
  rig.refuse_with = "no policy rule lets alice on db1.int";
  REQUIRE(rig.open() == SSH_OK);
  CHECK(rig.user_call([&] { return ssh_channel_request_exec(rig.user->get(), "id"); }) == SSH_OK);
  rig.until([&] { return rig.user->closed; });
  CHECK(rig.user->err == "castgate: no policy rule lets alice on db1.int\r\n");
  CHECK(rig.user->exit_status == 1);
  CHECK(rig.target == nullptr);  // nothing was opened there
  rig.until([&] { return rig.finished(); });
  CHECK(rig.host.end_event()["castgate"]["end_reason"] == "refused");
}

}  // namespace
}  // namespace castgate
