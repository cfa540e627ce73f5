// Signing in at the SSH prompt: the OAuth 2.0 device flow (RFC 8628) over keyboard-interactive
// for people, and workload tokens (JWTs) given as a keyboard-interactive answer or as the
// password. libssh frees a message when a callback returns, so castgate keeps the messages
// queued and answers them when the identity provider has answered; nothing here blocks.
//
// The decisions are SignInFlow's (a pure state machine); this class carries its steps out on the
// real messages and talks to the identity provider. The provider's answers and the prompt timer
// come back through the session's handle (session_host.h), never a pointer; the outcome goes one
// way, to the Host; a held message is dropped unanswered once the connection is gone.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/identity.h"
#include "gateway/session_host.h"
#include "gateway/sign_in_flow.h"
#include "gateway/ssh_handles.h"
#include "oidc/service.h"

namespace castgate {

class InteractiveSignIn {
 public:
  // This sign-in, named through its session: what runs later (the provider's answers, the
  // prompt timer) finds it again, if the session (and the sign-in) still exist.
  using Handle = SessionPartRef<InteractiveSignIn>;

  // Where the outcome goes.
  class Host {
   public:
    virtual ~Host() = default;
    virtual ssh_session downstream() = 0;
    // False when the user's address started too many device sign-ins lately.
    virtual bool device_flow_allowed() = 0;
    virtual void signed_in(const oidc::SignInResult& result, ssh::Message reply_to) = 0;
    virtual void sign_in_failed(const std::string& method, const oidc::SignInResult& result) = 0;
    virtual void sign_in_progress(const std::string& action, const std::string& detail) = 0;
  };

  InteractiveSignIn(Host& host, Handle self, oidc::OidcService& oidc, int max_token_attempts);
  ~InteractiveSignIn();
  InteractiveSignIn(const InteractiveSignIn&) = delete;
  InteractiveSignIn& operator=(const InteractiveSignIn&) = delete;

  // A keyboard-interactive request or response, or a password request.
  void on_keyboard_interactive(ssh::Message m);
  void on_password(ssh::Message m);
  // The connection is gone or closing: stop the provider, drop a held message unanswered.
  void connection_lost();
  bool in_progress() const { return flow_.in_progress(); }

 private:
  void run(SignInFlow::Steps steps, ssh::Message current);
  void ask_for_code(ssh_message to, bool with_prompt);
  void ask_for_token(ssh_message to);
  // The last prompt of a failed sign-in: its reason, where `ssh -q` still shows it.
  void tell_failure(ssh_message to, const std::string& why);

  Host& host_;
  const Handle self_;
  oidc::OidcService& oidc_;
  SignInFlow flow_;
  ssh::Message held_;
  oidc::OidcService::FlowId device_flow_ = 0;
  EventLoop::TimerId prompt_timer_ = 0;
  bool code_announced_ = false;  // auth.device_code written
};

}  // namespace castgate
