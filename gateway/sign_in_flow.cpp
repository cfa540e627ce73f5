#include "gateway/sign_in_flow.h"

#include "oidc/jwt.h"

namespace castgate {

oidc::SignInResult SignInFlow::failure(std::string error, std::string message) {
  oidc::SignInResult r;
  r.error = std::move(error);
  r.user_message = std::move(message);
  return r;
}

SignInFlow::Steps SignInFlow::finish(On on, oidc::SignInResult result, const std::string& method) {
  Steps steps;
  if (timer_running_) {
    steps.push_back({Verb::kCancelPromptTimer});
    timer_running_ = false;
  }
  if (flow_running_) {
    steps.push_back({Verb::kCancelDeviceFlow});
    flow_running_ = false;
  }
  if (on == On::kHeld) {
    held_ = false;
  } else if (held_) {
    // Ending on another message (a protocol violation while one is held): the held one is
    // refused too, so that none is left waiting.
    steps.push_back({Verb::kDecline, On::kHeld});
    held_ = false;
  }
  state_ = State::kIdle;
  token_prompt_ = false;
  early_result_.reset();
  Verb verb = result.ok ? Verb::kSucceed : Verb::kFail;
  steps.push_back({verb, on, false, method, std::move(result)});
  return steps;
}

SignInFlow::Steps SignInFlow::on_keyboard_interactive(bool device_flow_allowed) {
  if (state_ != State::kIdle) return {{Verb::kDecline, On::kCurrent}};
  if (!settings_.people) {
    if (!settings_.workloads)
      return finish(On::kCurrent,
                    failure("no_method", "no sign-in method is available for this request"),
                    "keyboard-interactive");
    state_ = State::kPrompted;
    token_prompt_ = true;
    return {{Verb::kAskForToken, On::kCurrent}};
  }
  if (!device_flow_allowed)
    return finish(On::kCurrent,
                  failure("rate_limited",
                          "too many sign-ins were started from your address; wait a minute and "
                          "try again"),
                  "oidc-device");
  state_ = State::kWaitingForCode;
  held_ = true;
  flow_running_ = true;
  return {{Verb::kHold, On::kCurrent}, {Verb::kStartDeviceFlow}};
}

SignInFlow::Steps SignInFlow::validate(std::string_view token, const std::string& method) {
  if (++token_attempts_ > settings_.max_token_attempts)
    return finish(On::kCurrent,
                  failure("too_many_tokens", "too many tokens were tried on this connection"),
                  method);
  Steps steps;
  if (flow_running_) {
    steps.push_back({Verb::kCancelDeviceFlow});
    flow_running_ = false;
  }
  if (timer_running_) {
    steps.push_back({Verb::kCancelPromptTimer});
    timer_running_ = false;
  }
  early_result_.reset();
  state_ = State::kWaitingForResult;
  held_ = true;
  result_method_ = method;
  steps.push_back({Verb::kHold, On::kCurrent});
  steps.push_back({Verb::kValidateToken, On::kNothing, false, std::string(token)});
  return steps;
}

SignInFlow::Steps SignInFlow::on_answer(std::string_view answer) {
  if (state_ == State::kGone) return {{Verb::kDecline, On::kCurrent}};
  if (state_ != State::kPrompted)
    return finish(On::kCurrent, failure("unexpected_answer", "castgate did not ask anything"),
                  "keyboard-interactive");
  if (settings_.workloads && oidc::looks_like_jwt(answer)) return validate(answer, "workload-jwt");
  if (token_prompt_ || !settings_.people)
    return finish(On::kCurrent, failure("bad_answer", "that answer is not a sign-in token"),
                  "keyboard-interactive");
  if (early_result_) {
    auto result = std::move(*early_result_);
    return finish(On::kCurrent, std::move(result), "oidc-device");
  }
  state_ = State::kWaitingForResult;
  held_ = true;
  result_method_ = "oidc-device";
  Steps steps{{Verb::kHold, On::kCurrent}};
  if (settings_.prompt == oidc::PromptMode::kAuto && !prompt_shown_ && !timer_running_) {
    // Nobody pressed Enter so far: if the approval takes a while, show the prompt too (it is the
    // only text `ssh -q` shows).
    timer_running_ = true;
    steps.push_back({Verb::kStartPromptTimer});
  }
  return steps;
}

SignInFlow::Steps SignInFlow::on_password(std::string_view password) {
  if (state_ == State::kGone) return {{Verb::kDecline, On::kCurrent}};
  if (state_ != State::kIdle || !settings_.workloads || !oidc::looks_like_jwt(password))
    return finish(
        On::kCurrent,
        failure("password_not_accepted", "passwords are not accepted; only workload tokens"),
        "password");
  return validate(password, "workload-jwt");
}

SignInFlow::Steps SignInFlow::on_code(const oidc::DeviceCode& code) {
  if (state_ != State::kWaitingForCode || !held_ || !flow_running_) return {};
  code_ = code;
  state_ = State::kPrompted;
  held_ = false;
  bool with_prompt = settings_.prompt == oidc::PromptMode::kEnter;
  prompt_shown_ = with_prompt;
  return {{Verb::kAskForCode, On::kHeld, with_prompt}};
}

SignInFlow::Steps SignInFlow::on_result(oidc::SignInResult result, const std::string& method) {
  if (state_ == State::kGone) return {};
  if (method == "oidc-device") {
    if (!flow_running_) return {};  // cancelled, or a stale answer
    flow_running_ = false;
  } else if (state_ != State::kWaitingForResult || result_method_ != method) {
    return {};
  }
  if ((state_ == State::kWaitingForResult || state_ == State::kWaitingForCode) && held_)
    return finish(On::kHeld, std::move(result), method);
  if (state_ == State::kPrompted && method == "oidc-device") {
    // The user is still at the prompt (their client reads nothing else until they answer):
    // sign them in, or tell them why not, when they answer.
    early_result_ = std::move(result);
  }
  return {};
}

SignInFlow::Steps SignInFlow::on_prompt_timer() {
  if (!timer_running_) return {};
  timer_running_ = false;
  if (state_ != State::kWaitingForResult || !held_ || prompt_shown_ || !code_ ||
      result_method_ != "oidc-device")
    return {};
  state_ = State::kPrompted;
  held_ = false;
  prompt_shown_ = true;
  return {{Verb::kAskForCode, On::kHeld, true}};
}

SignInFlow::Steps SignInFlow::on_connection_lost() {
  Steps steps;
  if (flow_running_) steps.push_back({Verb::kCancelDeviceFlow});
  if (timer_running_) steps.push_back({Verb::kCancelPromptTimer});
  if (held_) steps.push_back({Verb::kDrop, On::kHeld});
  flow_running_ = timer_running_ = held_ = false;
  early_result_.reset();
  state_ = State::kGone;
  return steps;
}

}  // namespace castgate
