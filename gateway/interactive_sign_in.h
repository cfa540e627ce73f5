// Signing in at the SSH prompt: the OAuth 2.0 device flow (RFC 8628) over keyboard-interactive
// for people, and workload tokens (JWTs) given as a keyboard-interactive answer or as the
// password. libssh frees a message when a callback returns, so castgate keeps the messages
// queued and answers them when the identity provider has answered; nothing here blocks.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/identity.h"
#include "gateway/event_loop.h"
#include "gateway/ssh_handles.h"
#include "oidc/service.h"

namespace castgate {

class InteractiveSignIn {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    virtual ssh_session downstream() = 0;
    virtual EventLoop& loop() = 0;
    // Runs `fn` on the session's loop if the session (and this sign-in) still exist.
    virtual void post_to_sign_in(std::function<void(InteractiveSignIn&)> fn) = 0;
    virtual void signed_in(const oidc::SignInResult& result, ssh::Message reply_to) = 0;
    virtual void sign_in_failed(const std::string& method, const oidc::SignInResult& result) = 0;
    virtual void sign_in_progress(const std::string& action, const std::string& detail) = 0;
  };

  InteractiveSignIn(Host& host, oidc::OidcService& oidc);
  ~InteractiveSignIn();
  InteractiveSignIn(const InteractiveSignIn&) = delete;
  InteractiveSignIn& operator=(const InteractiveSignIn&) = delete;

  // A keyboard-interactive request or response, or a password request.
  void on_keyboard_interactive(ssh::Message m);
  void on_password(ssh::Message m);
  bool in_progress() const { return state_ != State::kIdle; }

 private:
  enum class State {
    kIdle,
    kWaitingForCode,    // asked the provider for a device code; the request is held
    kPrompted,          // an INFO_REQUEST is out; waiting for the user's answer
    kWaitingForResult,  // the user answered; their response is held until the provider decides
  };
  void on_code(const oidc::DeviceCode& code);
  void on_result(oidc::SignInResult result, const std::string& method);
  void send_prompt(ssh_message to, bool with_prompt);
  void prompt_for_token(ssh_message to);
  void validate_token(const std::string& token, ssh::Message held, const std::string& method);
  void finish(ssh::Message held, oidc::SignInResult result, const std::string& method);

  Host& host_;
  oidc::OidcService& oidc_;
  State state_ = State::kIdle;
  ssh::Message held_;
  oidc::OidcService::FlowId flow_ = 0;
  std::optional<oidc::SignInResult> early_result_;  // decided before the user answered
  std::optional<oidc::DeviceCode> code_;
  EventLoop::TimerId prompt_timer_ = 0;
  bool prompt_shown_ = false;
};

}  // namespace castgate
