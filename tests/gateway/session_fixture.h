// A whole Session in-process, for unit tests of its states: a real Worker on its own loop thread
// with a GatewayContext that registers one user key, one target and one policy rule; the real
// signer (gateway/signer.h) answering on its own thread; the user, a libssh client on the other
// end of a socketpair the worker adopts; the target, a libssh server listening on 127.0.0.1
// (port 0, picked at run time) with a host key the gateway pins. The user and the target are
// driven from the test's thread with bounded pumping; every wait gives up after a fixed time.
//
// The end-to-end tests run the same flows against OpenSSH's ssh and sshd in processes of their
// own; these pin the session's transitions and its events in milliseconds.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "gateway/context.h"
#include "gateway/signer.h"
#include "gateway/signer_client.h"
#include "gateway/ssh_handles.h"
#include "gateway/worker.h"
#include "tests/asciicast/memory_sink.h"
#include "tests/gateway/ssh_loopback.h"

namespace castgate::testing {

// The signer of the gateway under test: a real Signer (no user CA) answering a SignerClient on a
// SOCK_SEQPACKET socketpair from a thread of its own, instead of a forked process.
class InProcessSigner {
 public:
  InProcessSigner();
  ~InProcessSigner();
  InProcessSigner(const InProcessSigner&) = delete;
  InProcessSigner& operator=(const InProcessSigner&) = delete;

  // The client for the context; once.
  std::unique_ptr<SignerClient> take_client() { return std::move(client_); }

 private:
  signer::Signer signer_;
  UniqueFd served_;
  std::unique_ptr<SignerClient> client_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The target: accepts TCP connections, signs them in with the one public key it is given, and
// keeps each session channel it accepted with the exec commands it was asked to run.
class TestTarget {
 public:
  struct Connection {
    ssh::Session session;
    ssh::Event event;
    bool key_exchanged = false, signed_in = false, gone = false;
    std::vector<std::string> commands;     // exec requests, as received
    std::unique_ptr<PeerChannel> channel;  // declared last: freed before its session
    ~Connection();
  };

  TestTarget();
  int port() const { return port_; }
  // The host key's known_hosts line for this target ("[127.0.0.1]:PORT ssh-ed25519 AAAA...").
  std::string known_hosts_line() const;
  // The key the gateway must sign in with.
  void accept_key(ssh_key public_key) { accepted_key_ = public_key; }

  // Accepts, exchanges keys, answers requests; never blocks.
  void poll();
  // poll() does nothing for `pause` from now: the gateway's connection waits in the backlog.
  void pause_for(std::chrono::milliseconds pause) {
    paused_until_ = std::chrono::steady_clock::now() + pause;
  }
  std::vector<int> fds() const;
  size_t accepted() const { return connections_.size(); }
  Connection* first() { return connections_.empty() ? nullptr : connections_.front().get(); }
  PeerChannel* channel() { return first() ? first()->channel.get() : nullptr; }
  // The target goes away: its socket is shut down, both ways, without a word.
  void disconnect();

 private:
  UniqueFd listener_;
  int port_ = 0;
  ssh::Bind bind_;
  std::string host_key_base64_;
  ssh_key accepted_key_ = nullptr;  // not owned
  std::chrono::steady_clock::time_point paused_until_{};
  std::vector<std::unique_ptr<Connection>> connections_;
};

// The gateway under test and the peers around it. Construct, adjust `context` (config, rules),
// then connect(): the worker starts on the first connection.
class SessionRig {
 public:
  SessionRig();
  ~SessionRig();
  SessionRig(const SessionRig&) = delete;
  SessionRig& operator=(const SessionRig&) = delete;

  asciicast::testing::MemorySink sink;
  GatewayContext context;
  TestTarget target;
  ssh::Key user_key;      // registered to identity "alice"
  ssh::Key upstream_key;  // the static key castgate signs in to the target with
  std::unique_ptr<Worker> worker;

  // The user's connection: a libssh client on the user's end of the socketpair.
  ssh::Session user;
  ssh::Event user_event;
  std::vector<std::unique_ptr<PeerChannel>> user_channels;  // freed before `user` (~SessionRig)

  // Hands the worker a connection as "login@target" and waits for its connection.accepted;
  // returns the session's id. The user's client is set up, nothing sent yet.
  std::string connect(const std::string& ssh_user = "ubuntu@web1");
  // The user's key exchange, until it is done.
  void handshake();
  // Signs in with `key` (the registered one by default); returns libssh's last answer.
  int sign_in(ssh_key key = nullptr);
  // Opens a session channel; returns libssh's answer and keeps the channel in user_channels.
  int open_channel();
  int exec(PeerChannel& channel, const std::string& command);
  // The user goes away: the socket is shut down, both ways, without a word (ssh killed, the
  // network gone).
  void user_disconnect();

  // One round of I/O on the user's and the target's sockets (waits at most a few milliseconds).
  void pump();
  // Pumps until `done` holds; fails the test after `timeout`.
  bool until(const std::function<bool()>& done,
             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Repeats a non-blocking libssh call of the user's, pumping, until it is not SSH_AGAIN.
  int user_call(const std::function<int()>& call);

  // Runs `fn` on the worker's loop and waits for it.
  void on_loop(const std::function<void()>& fn);
  // Session::tick(now + ahead) on the session, as the worker's timer does, on its loop.
  void tick_ahead(const std::string& id, std::chrono::seconds ahead);
  // The events written so far, parsed.
  std::vector<nlohmann::json> events();
  // Their actions, in order, leaving out the recording's own (asciicast.*): "a b c".
  std::string actions();
  int count(const std::string& action);
  // The one event with `action` (fails the test unless there is exactly one).
  nlohmann::json event(const std::string& action);
  // Until the connection's last event (session.end or connection.closed) is written and the
  // worker dropped the session.
  bool until_ended();
  size_t live_sessions() const { return worker ? worker->live_sessions() : 0; }

 private:
  void start_worker();
  InProcessSigner signer_;
};

}  // namespace castgate::testing
