// The sign-in state machine behind keyboard-interactive and password requests, with no libssh
// and no threads in it: every input (a new keyboard-interactive request, the user's answer, a
// password, the provider's code or verdict, a timer, the connection going away) returns the
// steps to take, which InteractiveSignIn carries out on the real messages. Kept pure so that it
// can be fuzzed with arbitrary orders of inputs (tests/fuzz/fuzz_sign_in_flow.cpp).
//
// The messages: an input that arrives with an SSH message (keyboard-interactive request, answer,
// password) makes it the "current" one, which the steps must either answer or hold. At most one
// message is held at a time, for as long as castgate waits for the identity provider; it is
// answered exactly once, or dropped unanswered when the connection is gone.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oidc/config.h"
#include "oidc/service.h"

namespace castgate {

class SignInFlow {
 public:
  struct Settings {
    bool people = false;     // device flow with an identity provider
    bool workloads = false;  // workload tokens (JWTs)
    oidc::PromptMode prompt = oidc::PromptMode::kEnter;
    int max_token_attempts = 3;  // workload-token validations per connection
  };

  enum class Verb {
    kHold,              // keep the current message; it is answered later
    kStartDeviceFlow,   // ask the provider for a device code
    kCancelDeviceFlow,  // stop polling the provider
    kValidateToken,     // `text`: the token to validate
    kAskForCode,        // INFO_REQUEST showing the device code; `prompt`: with a prompt line
    kAskForToken,       // INFO_REQUEST "Workload token:"
    kSucceed,           // sign the user in with `result`
    kFail,              // sign-in failed (`result`, `text`: the method): tell, audit, close
    kDecline,           // refuse this request only (another attempt while one is under way)
    kDrop,              // the held message is freed unanswered (the connection is gone)
    kStartPromptTimer,  // call on_prompt_timer() after the configured delay
    kCancelPromptTimer,
  };
  enum class On { kNothing, kCurrent, kHeld };

  struct Step {
    Step(Verb v, On o = On::kNothing, bool p = false, std::string t = {}, oidc::SignInResult r = {})
        : verb(v), on(o), prompt(p), text(std::move(t)), result(std::move(r)) {}
    Verb verb;
    On on;
    bool prompt;
    std::string text;
    oidc::SignInResult result;
  };
  using Steps = std::vector<Step>;

  explicit SignInFlow(Settings settings) : settings_(settings) {}

  // Inputs that come with a message (it becomes the current one).
  // `device_flow_allowed`: false when the source address has started too many sign-ins lately.
  Steps on_keyboard_interactive(bool device_flow_allowed);
  Steps on_answer(std::string_view answer);
  Steps on_password(std::string_view password);
  // Inputs without a message.
  Steps on_code(const oidc::DeviceCode& code);
  Steps on_result(oidc::SignInResult result, const std::string& method);
  Steps on_prompt_timer();
  Steps on_connection_lost();

  bool in_progress() const { return state_ != State::kIdle && state_ != State::kGone; }
  bool holding() const { return held_; }
  bool device_flow_running() const { return flow_running_; }
  const std::optional<oidc::DeviceCode>& code() const { return code_; }

 private:
  enum class State {
    kIdle,
    kWaitingForCode,    // asked the provider for a device code; the request is held
    kPrompted,          // an INFO_REQUEST is out; waiting for the user's answer
    kWaitingForResult,  // the user answered (or gave a token); held until the provider decides
    kGone,              // the connection is gone: nothing more happens
  };
  Steps finish(On on, oidc::SignInResult result, const std::string& method);
  Steps validate(std::string_view token, const std::string& method);
  static oidc::SignInResult failure(std::string error, std::string message);

  const Settings settings_;
  State state_ = State::kIdle;
  bool held_ = false;
  bool flow_running_ = false;
  bool timer_running_ = false;
  bool prompt_shown_ = false;
  bool token_prompt_ = false;  // the INFO_REQUEST out asks for a workload token
  int token_attempts_ = 0;
  std::string result_method_;
  std::optional<oidc::SignInResult> early_result_;  // decided before the user answered
  std::optional<oidc::DeviceCode> code_;
};

}  // namespace castgate
