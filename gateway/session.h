// One user connection: the downstream SSH server session, the upstream connection to the
// target, the channels relayed between them and the recording. The session owns all of them;
// close() is the single teardown path and always writes the session.end event.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "common/identity.h"
#include "gateway/channel_pair.h"
#include "gateway/config.h"
#include "gateway/event_loop.h"
#include "gateway/interactive_sign_in.h"
#include "gateway/jump_tunnel.h"
#include "gateway/locks.h"
#include "gateway/policy.h"
#include "gateway/ssh_handles.h"
#include "gateway/upstream.h"
#include "gateway/worker.h"

namespace castgate {

// The inner connection of a ProxyJump channel: who signed in on the outer connection, and with
// what. The inner connection exists only inside that outer connection's channel (one end of a
// socketpair), so nobody else can reach it; it is signed in as the outer identity, and where the
// outer connection proved a key, only a fresh signature by that same key (over the inner
// connection's own session id) is accepted.
struct JumpOrigin {
  std::string outer_session;
  Identity identity;
  std::vector<std::string> proven_keys;  // key blobs the outer connection proved by a signature
  bool has_certificate = false;          // the outer sign-in was a certificate: its principals
  std::vector<std::string> certificate_principals;  // bound the inner login too
  std::string target;                               // the configured target the channel named
  // When the outer sign-in ends (a certificate's valid_before, a token's or key binding's
  // expiry); none for a registered key. No inner connection signs in after it.
  std::optional<std::chrono::system_clock::time_point> expires;
};

class Session final : public FdHandler,
                      public Upstream::Owner,
                      public ChannelHost,
                      public InteractiveSignIn::Host {
 public:
  enum class State { kHandshake, kAuthenticating, kAuthenticated, kClosing, kClosed };

  Session(Worker& worker, std::string id, int fd, ListenSpec listener, asciicast::Endpoint peer,
          std::optional<JumpOrigin> jump = std::nullopt);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  const std::string& id() const { return id_; }
  State state() const { return state_; }
  bool signing_in() const {
    return state_ == State::kHandshake || state_ == State::kAuthenticating;
  }

  // Starts the one teardown path: channels are told `user_message`, both connections are
  // closed, session.end is written and the worker drops the session.
  void close(const std::string& reason, const std::string& user_message);
  // The recording output has room again.
  void resume() { step(); }
  // Once a second: timeouts, recording health.
  void tick(std::chrono::steady_clock::time_point now);
  // Ends the session if a lock now matches its identity and target.
  void enforce_locks(const Locks& locks);
  // The configuration was reloaded (GatewayContext::retired): a connection still signing in, or
  // one without a target and no ProxyJump channel left, ends; it connects again, to the rules
  // in force now.
  void retire();

  void on_fd_ready(int fd, uint32_t events) override;
  void on_fault(const char* what) noexcept override { fault(what); }

  // The fault boundary: every entry from the event loop into this session's code (fd readiness,
  // posted tasks, timers, deferred work) runs through here. An exception ends this session only,
  // with its last event, never the worker or the process.
  void guarded(const std::function<void()>& fn) noexcept;
  // How code on other threads names this session.
  SessionRef ref() { return SessionRef{&worker_, id_}; }

  // Upstream::Owner
  void on_upstream_ready() override;
  void on_upstream_failed(const UpstreamFailure& failure) override;
  void on_upstream_io() override { step(); }
  ssh::Key make_upstream_credential(const std::string& local_ip, std::string& description) override;
  void run_guarded(const std::function<void()>& fn) noexcept override { guarded(fn); }
  void on_upstream_fault(const char* what) noexcept override { fault(what); }

  // InteractiveSignIn::Host
  ssh_session downstream() override { return down_.get(); }
  EventLoop& loop() override;
  InteractiveSignIn::Poster sign_in_poster() override;
  bool device_flow_allowed() override;
  void signed_in(const oidc::SignInResult& result, ssh::Message reply_to) override;
  void sign_in_failed(const std::string& method, const oidc::SignInResult& result) override;
  void sign_in_progress(const std::string& action, const std::string& detail) override;

  // ChannelHost
  ssh_session upstream_session() override;
  asciicast::SessionLog& log() override { return *log_; }
  bool recording_has_room() override;
  bool recording_enabled() const override;
  const asciicast::AlertRules* alert_rules() const override;
  std::string recording_refusal() override;
  const Clock& clock() const override;
  const Target* target() const override { return target_; }
  const PolicyDecision& decision() const override { return decision_; }
  std::string title() const override;
  void note_activity() override;
  void request_step() override;
  void limit_exceeded(const std::string& limit, const std::string& detail) override;
  bool resize_terminal(int channel, long cells) override;
  const GatewayConfig& config() const override;
  void channel_finished(uint64_t bytes_to_user, uint64_t bytes_to_target,
                        std::optional<int> exit_status,
                        const std::optional<std::string>& exit_signal) override;

 private:
  void step();
  void step_once();
  // An exception reached the boundary: end this session as cleanly as still possible.
  void fault(const char* what) noexcept;
  // Requests (channel, global, channel opens) spend from a token bucket; false when spent out.
  bool spend_request_budget();
  void handle_message(ssh::Message m);
  void handle_auth(ssh::Message m);
  void handle_publickey(ssh::Message m);
  // A public-key request whose signature checked. Otherwise answers it (a query with "pk ok", a
  // bad signature with a failure and an audit event) and returns false.
  bool key_proven(ssh_message msg, int key_state, const std::string& method,
                  const std::string& key);
  void handle_channel_open(ssh::Message m);
  // A direct-tcpip channel to a configured target's SSH address: served here (ProxyJump).
  void open_jump(ssh::Message m, const Target& target);
  void end_jump(JumpTunnel& tunnel, const std::string& reason);
  // The inner connection of a ProxyJump channel signs in as the outer connection's identity.
  void handle_jump_auth(ssh::Message m);
  void handle_channel_request(ssh::Message m);
  void accept_identity(const Identity& identity, ssh::Message m, const std::string& detail);
  void authorize(const std::string& ssh_user);
  // user.name, destination.address and related.user of a failed sign-in (auth.failure).
  nlohmann::json attempted_user() const;
  void auth_failed(const std::string& method, const std::string& reason);
  void send_banner_once();
  void send_text_banner(const std::string& text);
  void refuse_unregistered_keys(ssh::Message m);
  void update_interest();
  void finalize();
  void release_unauthenticated();
  void unwatch();
  ChannelPair* find_pair(ssh_channel downstream);

  Worker& worker_;
  const std::string id_;
  const ListenSpec listener_;
  const asciicast::Endpoint peer_;
  State state_ = State::kHandshake;
  std::unique_ptr<asciicast::SessionLog> log_;

  Identity identity_;
  bool authenticated_ = false;
  std::string login_;
  std::string target_name_;
  const Target* target_ = nullptr;
  PolicyDecision decision_;
  std::string refusal_;  // non-empty: the session is signed in but may not run anything
  std::vector<std::string> offered_keys_;  // fingerprints of unknown keys, for the user
  std::string requested_user_;             // the SSH user name, as sent
  std::string last_ssh_user_;              // printable form, for events
  int auth_failures_ = 0;
  bool banner_sent_ = false;
  bool counted_unauthenticated_ = true;
  bool untracked_ = false;  // no room in the session table
  std::vector<std::string> certificate_principals_;
  bool has_certificate_ = false;
  std::string verified_key_;  // proved by a signature, not registered: bound after a device sign-in
  std::string binding_key_;   // the bound key this connection signed in with, if any
  std::vector<std::string> proven_keys_;  // keys this connection signed in with (for ProxyJump)
  const std::optional<JumpOrigin> jump_;  // set on the inner connection of a ProxyJump channel
  // No target was named: the connection may still open ProxyJump channels; the denial is
  // recorded when it asks for a shell or command instead.
  std::optional<nlohmann::json> deferred_denial_;
  // When this connection's sign-in ends (see JumpOrigin::expires).
  std::optional<std::chrono::system_clock::time_point> credential_expires_;
  // The last ProxyJump channel of a connection without a target closed then: it may idle for
  // --jump-idle-timeout (a ControlMaster between commands), then it is closed.
  std::optional<std::chrono::steady_clock::time_point> last_jump_end_;
  // ProxyJump channels whose inner connection has not signed in yet.
  size_t jumps_signing_in();

  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point last_activity_;
  // A policy rule's max_session_length: when the user is warned, and when the session ends.
  std::optional<std::chrono::steady_clock::time_point> warn_at_, deadline_;
  bool warned_ = false;
  void check_session_length(std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point closing_deadline_{};
  std::string close_reason_;
  std::string close_message_;
  bool in_step_ = false, step_again_ = false, step_scheduled_ = false;
  int next_channel_id_ = 0;
  bool session_started_ = false;  // session.start was written (else the end is connection.closed)
  uint64_t bytes_to_user_ = 0, bytes_to_target_ = 0;
  std::optional<int> last_exit_status_;
  std::optional<std::string> last_exit_signal_;
  uint32_t interest_ = 0;
  int fd_ = -1;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool faulted_ = false;
  double request_tokens_ = 0;  // request budget (spend_request_budget)
  std::chrono::steady_clock::time_point request_tokens_at_{};
  std::map<int, long> terminal_cells_;  // by channel

  // Destruction order matters: the sign-in (it may hold a message of the downstream session),
  // channels, then the upstream connection, then our own.
  ssh::Session down_;
  ssh::Event down_event_;
  std::unique_ptr<Upstream> upstream_;
  std::map<int, std::unique_ptr<ChannelPair>> pairs_;
  std::map<int, std::unique_ptr<JumpTunnel>> tunnels_;
  std::unique_ptr<InteractiveSignIn> sign_in_;
};

// Splits the SSH user name into login and target ("ubuntu@db1.int" -> ubuntu, db1.int).
void split_user(const std::string& ssh_user, std::string& login, std::string& target);

}  // namespace castgate
