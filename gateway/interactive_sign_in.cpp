#include "gateway/interactive_sign_in.h"

#include "common/text.h"
#include "gateway/ssh_messages.h"
#include "oidc/jwt.h"
#include "oidc/qr.h"

namespace castgate {

InteractiveSignIn::InteractiveSignIn(Host& host, oidc::OidcService& oidc)
    : host_(host), oidc_(oidc) {}

InteractiveSignIn::~InteractiveSignIn() {
  if (flow_) oidc_.cancel(flow_);
  if (prompt_timer_) host_.loop().cancel_timer(prompt_timer_);
  if (held_) ssh_message_reply_default(held_.get());
}

void InteractiveSignIn::on_keyboard_interactive(ssh::Message m) {
  ssh_message msg = m.get();
  if (!ssh_message_auth_kbdint_is_response(msg)) {
    // A new keyboard-interactive attempt.
    if (state_ != State::kIdle) {
      ssh_message_reply_default(msg);
      return;
    }
    if (!oidc_.people_enabled()) return prompt_for_token(msg);
    state_ = State::kWaitingForCode;
    held_ = std::move(m);
    flow_ = oidc_.start_device_flow(
        [this_host = &host_](const oidc::DeviceCode& code) {
          this_host->post_to_sign_in([code](InteractiveSignIn& s) { s.on_code(code); });
        },
        [this_host = &host_](oidc::SignInResult result) {
          this_host->post_to_sign_in([result = std::move(result)](InteractiveSignIn& s) mutable {
            s.flow_ = 0;
            s.on_result(std::move(result), "oidc-device");
          });
        });
    return;
  }
  // The user's answer.
  ssh_session session = host_.downstream();
  std::string answer;
  if (ssh_userauth_kbdint_getnanswers(session) > 0) {
    const char* a = ssh_userauth_kbdint_getanswer(session, 0);
    answer = a ? a : "";
  }
  if (oidc_.workloads_enabled() && oidc::looks_like_jwt(answer)) {
    if (flow_) oidc_.cancel(flow_);
    flow_ = 0;
    validate_token(answer, std::move(m), "workload-jwt");
    return;
  }
  if (state_ != State::kPrompted || !oidc_.people_enabled()) {
    oidc::SignInResult r;
    r.error = "bad_answer";
    r.user_message = "that answer is not a sign-in token";
    host_.sign_in_failed("keyboard-interactive", r);
    ssh_message_reply_default(msg);
    state_ = State::kIdle;
    return;
  }
  if (early_result_) {
    auto result = std::move(*early_result_);
    early_result_.reset();
    return finish(std::move(m), std::move(result), "oidc-device");
  }
  state_ = State::kWaitingForResult;
  held_ = std::move(m);
  if (!prompt_shown_ && oidc_.config().device.prompt == oidc::PromptMode::kAuto) {
    // Nobody pressed Enter so far: if the approval takes a while, show the prompt too (it is
    // the only text `ssh -q` shows).
    prompt_timer_ = host_.loop().add_timer(
        std::chrono::duration_cast<std::chrono::milliseconds>(oidc_.config().device.prompt_delay),
        [this] {
          prompt_timer_ = 0;
          if (state_ != State::kWaitingForResult || !held_) return;
          ssh::Message held = std::move(held_);
          send_prompt(held.get(), true);
        });
  }
}

void InteractiveSignIn::on_password(ssh::Message m) {
  const char* pw = ssh::auth_password(m.get());
  std::string password = pw ? pw : "";
  if (state_ != State::kIdle || !oidc_.workloads_enabled() || !oidc::looks_like_jwt(password)) {
    oidc::SignInResult r;
    r.error = "password_not_accepted";
    r.user_message = "passwords are not accepted; only workload tokens";
    host_.sign_in_failed("password", r);
    ssh_message_reply_default(m.get());
    return;
  }
  validate_token(password, std::move(m), "workload-jwt");
}

void InteractiveSignIn::validate_token(const std::string& token, ssh::Message held,
                                       const std::string& method) {
  state_ = State::kWaitingForResult;
  held_ = std::move(held);
  oidc_.validate_workload_token(token, [this_host = &host_, method](oidc::SignInResult result) {
    this_host->post_to_sign_in([result = std::move(result), method](InteractiveSignIn& s) mutable {
      s.on_result(std::move(result), method);
    });
  });
}

void InteractiveSignIn::prompt_for_token(ssh_message to) {
  const char* prompts[] = {"Workload token: "};
  char echo[] = {0};
  ssh_message_auth_interactive_request(to, "castgate", "Sign in with a workload token.", 1, prompts,
                                       echo);
  state_ = State::kPrompted;
}

void InteractiveSignIn::send_prompt(ssh_message to, bool with_prompt) {
  const auto& cfg = oidc_.config().device;
  const auto& code = *code_;
  std::string where = code.verification_uri_complete.empty() ? code.verification_uri
                                                             : code.verification_uri_complete;
  std::string instruction = "castgate: sign in to continue.\n  Open:  " + where +
                            "\n  Code:  " + code.user_code + "  (valid for " +
                            std::to_string(code.expires_in.count() / 60) + " minutes)\n";
  if (cfg.qr) instruction += oidc::ascii_qr(where);
  if (with_prompt) {
    // The prompt is the only text `ssh -q` shows: it carries the URL and code on its own.
    std::string prompt = "Open " + code.verification_uri + " and enter code " + code.user_code +
                         ", then press Enter: ";
    const char* prompts[] = {prompt.c_str()};
    char echo[] = {1};
    ssh_message_auth_interactive_request(to, "castgate sign-in", instruction.c_str(), 1, prompts,
                                         echo);
    prompt_shown_ = true;
  } else {
    ssh_message_auth_interactive_request(to, "castgate sign-in", instruction.c_str(), 0, nullptr,
                                         nullptr);
  }
  state_ = State::kPrompted;
}

void InteractiveSignIn::on_code(const oidc::DeviceCode& code) {
  if (state_ != State::kWaitingForCode || !held_) return;
  code_ = code;
  host_.sign_in_progress("auth.device_code",
                         "verification at " + printable(code.verification_uri, 200));
  ssh::Message held = std::move(held_);
  send_prompt(held.get(), oidc_.config().device.prompt == oidc::PromptMode::kEnter);
}

void InteractiveSignIn::on_result(oidc::SignInResult result, const std::string& method) {
  if (state_ == State::kWaitingForResult && held_) {
    ssh::Message held = std::move(held_);
    return finish(std::move(held), std::move(result), method);
  }
  if (state_ == State::kWaitingForCode && held_) {
    // Failed before a code was issued (provider unreachable, ...).
    ssh::Message held = std::move(held_);
    return finish(std::move(held), std::move(result), method);
  }
  // The user is still at the prompt (their client reads nothing else until they press Enter):
  // sign them in, or tell them why not, when they answer.
  early_result_ = std::move(result);
}

void InteractiveSignIn::finish(ssh::Message held, oidc::SignInResult result,
                               const std::string& method) {
  state_ = State::kIdle;
  if (prompt_timer_) {
    host_.loop().cancel_timer(prompt_timer_);
    prompt_timer_ = 0;
  }
  if (result.ok) {
    host_.signed_in(result, std::move(held));
  } else {
    // The reason goes out first: after the failure a client may hang up without reading more.
    host_.sign_in_failed(method, result);
    ssh_message_reply_default(held.get());
  }
}

}  // namespace castgate
