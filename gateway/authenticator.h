// Signing a connection in: registered public keys, keys bound after a device sign-in, user
// certificates from a trusted CA (presented_certificate.h), the device flow and workload tokens
// at the prompt (InteractiveSignIn), and the inner connection of a ProxyJump channel, which signs
// in as the outer one. Yields an Identity to its connection, or refuses: every failed attempt is
// an auth.failure event, and too many of them close the connection.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "common/identity.h"
#include "gateway/context.h"
#include "gateway/interactive_sign_in.h"
#include "gateway/ssh_handles.h"

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

class Authenticator final : public InteractiveSignIn::Host {
 public:
  // The connection being signed in.
  class Connection {
   public:
    virtual ~Connection() = default;
    virtual ssh_session downstream() = 0;
    virtual asciicast::SessionLog& log() = 0;
    // The sign-in succeeded: the connection answers `m` and records it.
    virtual void accept_identity(const Identity& identity, ssh::Message m,
                                 const std::string& detail) = 0;
    virtual void close(asciicast::EndReason reason, const std::string& user_message) = 0;
  };

  // `interactive`: how the sign-in at the prompt, once started, is found again through the
  // connection's handle. `listener_target`: the target the listener serves, if any (named in
  // auth.failure events). `jump`: set on the inner connection of a ProxyJump channel; it must
  // outlive this.
  Authenticator(GatewayContext& context, Connection& connection,
                InteractiveSignIn::Handle interactive, std::string listener_target,
                std::string peer_address, const JumpOrigin* jump);
  ~Authenticator() override;
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // An SSH_REQUEST_AUTH message.
  void handle(ssh::Message m);
  // An identity was accepted; later requests are answered by default.
  bool succeeded() const { return succeeded_; }
  // The SSH user name of the last request, as sent ("login@target").
  const std::string& requested_user() const { return requested_user_; }

  // What the sign-in proved, for the routing and for ProxyJump channels.
  bool has_certificate() const { return has_certificate_; }
  // The logins the sign-in's certificate allows (empty without one).
  const std::vector<std::string>& certificate_principals() const { return certificate_principals_; }
  const std::vector<std::string>& proven_keys() const { return proven_keys_; }
  // When the sign-in ends (see JumpOrigin::expires).
  const std::optional<std::chrono::system_clock::time_point>& credential_expires() const {
    return credential_expires_;
  }
  // The policy wants a second factor: a key bound after a sign-in without one would keep
  // bringing that sign-in back, so the bindings this sign-in used are forgotten; the next
  // connection signs in afresh, and can use one.
  void forget_key_bindings();

  // The sign-in at the prompt, if one started.
  InteractiveSignIn* interactive() { return interactive_.get(); }
  bool interactive_in_progress() const { return interactive_ && interactive_->in_progress(); }
  // The connection is gone or closing.
  void connection_lost();

  // InteractiveSignIn::Host
  ssh_session downstream() override { return connection_.downstream(); }
  bool device_flow_allowed() override;
  void signed_in(const oidc::SignInResult& result, ssh::Message reply_to) override;
  void sign_in_failed(const std::string& method, const oidc::SignInResult& result) override;
  void sign_in_progress(const std::string& action, const std::string& detail) override;

 private:
  void handle_publickey(ssh::Message m);
  // A public-key request whose signature checked. Otherwise answers it (a query with "pk ok", a
  // bad signature with a failure and an audit event) and returns false.
  bool key_proven(ssh_message msg, int key_state, const std::string& method,
                  const std::string& key);
  // The inner connection of a ProxyJump channel signs in as the outer connection's identity.
  void handle_jump_auth(ssh::Message m);
  void accept_jump(ssh::Message m, const std::string& detail);
  void accept(const Identity& identity, ssh::Message m, const std::string& detail);
  // user.name, destination.address and related.user of a failed sign-in (auth.failure).
  nlohmann::json attempted_user() const;
  void auth_failed(const std::string& method, const std::string& reason);
  void send_banner_once();
  void send_text_banner(const std::string& text);
  void refuse_unregistered_keys(ssh::Message m);
  const Clock& clock() const { return *context_.clock; }

  GatewayContext& context_;
  Connection& connection_;
  const InteractiveSignIn::Handle interactive_handle_;
  const std::string listener_target_;
  const std::string peer_address_;
  const JumpOrigin* const jump_;

  bool succeeded_ = false;
  std::vector<std::string> offered_keys_;  // fingerprints of unknown keys, for the user
  std::string requested_user_;             // the SSH user name, as sent
  std::string last_ssh_user_;              // printable form, for events
  int auth_failures_ = 0;
  bool banner_sent_ = false;
  std::vector<std::string> certificate_principals_;
  bool has_certificate_ = false;
  std::string verified_key_;  // proved by a signature, not registered: bound after a device sign-in
  std::string binding_key_;   // the bound key this connection signed in with, if any
  std::vector<std::string> proven_keys_;  // keys this connection signed in with (for ProxyJump)
  std::optional<std::chrono::system_clock::time_point> credential_expires_;
  // It may hold a message of the downstream session: the connection drops this first.
  std::unique_ptr<InteractiveSignIn> interactive_;
};

}  // namespace castgate
