// One user connection: the downstream SSH server session, the upstream connection to the
// target, the channels relayed between them, its ProxyJump channels (jump_channels.h) and the
// recording. The session owns all of them; close() is the single teardown path and always writes
// the session.end event.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "common/identity.h"
#include "common/unique_fd.h"
#include "gateway/authenticator.h"
#include "gateway/channel_pair.h"
#include "gateway/config.h"
#include "gateway/context.h"
#include "gateway/event_loop.h"
#include "gateway/jump_channels.h"
#include "gateway/locks.h"
#include "gateway/policy.h"
#include "gateway/router.h"
#include "gateway/session_host.h"
#include "gateway/ssh_handles.h"
#include "gateway/upstream.h"

namespace castgate {

// Signing in is the Authenticator's, where the connection may go the Router's, and the
// credential for the target upstream_credential.h's; the session strings them together and owns
// what lives as long as the connection.
class Session final : public FdHandler,
                      public Upstream::Owner,
                      public ChannelHost,
                      public Authenticator::Connection {
 public:
  enum class State { kHandshake, kAuthenticating, kAuthenticated, kClosing, kClosed };

  // `fd` is the user's connection: the session owns it from here (start() hands it to libssh).
  Session(SessionHost& host, GatewayContext& context, std::string id, int fd, ListenSpec listener,
          asciicast::Endpoint peer, std::optional<JumpOrigin> jump = std::nullopt);
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
  void close(asciicast::EndReason reason, const std::string& user_message) override {
    close(asciicast::Ending{reason, ""}, user_message);
  }
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
  // How code that runs later, or on other threads, names this session (session_host.h).
  SessionRef ref() { return SessionRef{&host_, id_}; }

  // Upstream::Owner
  void on_upstream_ready() override;
  void on_upstream_failed(const UpstreamFailure& failure) override;
  void on_upstream_io() override { step(); }
  ssh::Key make_upstream_credential(const std::string& local_ip, std::string& description) override;
  void on_upstream_fault(const char* what) noexcept override { fault(what); }

  // Authenticator::Connection
  ssh_session downstream() override { return down_.get(); }
  void accept_identity(const Identity& identity, ssh::Message m,
                       const std::string& detail) override;

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
  // Every end starts here (public close(), the user's connection lost, a fault): it records why,
  // once, and moves to kClosing; a later step or tick calls finalize(), the one teardown.
  void close(asciicast::Ending ending, const std::string& user_message);
  // ssh_bind_accept_fd() on socket_, which libssh then owns (fd_); false if it failed.
  bool hand_socket_to_libssh();
  void step();
  void step_once();
  // How work scheduled through a part's handle (InteractiveSignIn::Handle, Upstream::Handle)
  // reaches the part, if the session still has it.
  static void enter_sign_in(Session& s, const InteractiveSignIn::Handle::Task& fn);
  static void enter_upstream(Session& s, const Upstream::Handle::Task& fn);
  // An exception reached the boundary: end this session as cleanly as still possible.
  void fault(const char* what) noexcept;
  // Requests (channel, global, channel opens) spend from a token bucket; false when spent out.
  bool spend_request_budget();
  void handle_message(ssh::Message m);
  void handle_channel_open(ssh::Message m);
  // Where the inner session of a new ProxyJump channel starts from (jump_channels.h).
  JumpChannels::Outer jump_outer() const;
  void handle_channel_request(ssh::Message m);
  // Signed in: where the connection goes (the Router's answer), then the connection there.
  void authorize(const std::string& ssh_user);
  void deny(const RouteDenial& denial);
  void connect_upstream();
  bool authenticated() const { return sign_in_->succeeded(); }
  void update_interest();
  void finalize();
  void release_unauthenticated();
  void unwatch();
  ChannelPair* find_pair(ssh_channel downstream);

  SessionHost& host_;
  GatewayContext& context_;
  const std::string id_;
  const ListenSpec listener_;
  const asciicast::Endpoint peer_;
  State state_ = State::kHandshake;
  std::unique_ptr<asciicast::SessionLog> log_;

  Identity identity_;
  std::string login_;
  std::string target_name_;
  const Target* target_ = nullptr;
  PolicyDecision decision_;
  std::string refusal_;  // non-empty: the session is signed in but may not run anything
  bool counted_unauthenticated_ = true;
  bool untracked_ = false;                // no room in the session table
  const std::optional<JumpOrigin> jump_;  // set on the inner connection of a ProxyJump channel
  // No target was named: the connection may still open ProxyJump channels; the denial is
  // recorded when it asks for a shell or command instead.
  std::optional<nlohmann::json> deferred_denial_;

  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point last_activity_;
  // A policy rule's max_session_length: when the user is warned, and when the session ends.
  std::optional<std::chrono::steady_clock::time_point> warn_at_, deadline_;
  bool warned_ = false;
  void check_session_length(std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point closing_deadline_{};
  asciicast::Ending ending_;  // set by close()
  std::string close_message_;
  bool in_step_ = false, step_again_ = false, step_scheduled_ = false;
  int next_channel_id_ = 0;
  bool session_started_ = false;  // session.start was written (else the end is connection.closed)
  uint64_t bytes_to_user_ = 0, bytes_to_target_ = 0;
  std::optional<int> last_exit_status_;
  std::optional<std::string> last_exit_signal_;
  uint32_t interest_ = 0;
  UniqueFd socket_;  // the user's connection, until start() hands it to libssh
  int fd_ = -1;      // then: libssh's socket, watched until libssh closes it or the session ends
  bool faulted_ = false;
  double request_tokens_ = 0;  // request budget (spend_request_budget)
  std::chrono::steady_clock::time_point request_tokens_at_{};
  std::map<int, long> terminal_cells_;  // by channel

  // Destruction order matters: the sign-in (it may hold a message of the downstream session),
  // channels and ProxyJump channels, then the upstream connection, then our own.
  ssh::Session down_;
  ssh::Event down_event_;
  std::unique_ptr<Upstream> upstream_;
  std::map<int, std::unique_ptr<ChannelPair>> pairs_;
  std::unique_ptr<JumpChannels> jumps_;     // direct-tcpip channels to a target's SSH address
  std::unique_ptr<Authenticator> sign_in_;  // made in the constructor, dropped first
};

}  // namespace castgate
