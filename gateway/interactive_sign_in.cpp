#include "gateway/interactive_sign_in.h"

#include "common/text.h"
#include "gateway/ssh_messages.h"
#include "oidc/qr.h"

namespace castgate {

namespace {
// An 80x24 terminal holds the QR code (at most 21 lines: a URL of up to 106 bytes), the
// "(login@host)" line OpenSSH puts before the prompt, and the prompt.
constexpr int kQrMaxLines = 21;

SignInFlow::Settings settings_of(const oidc::OidcService& oidc, int max_token_attempts) {
  SignInFlow::Settings s;
  s.people = oidc.people_enabled();
  s.workloads = oidc.workloads_enabled();
  s.prompt = oidc.config().device.prompt;
  s.max_token_attempts = max_token_attempts;
  return s;
}
}  // namespace

InteractiveSignIn::InteractiveSignIn(Host& host, Handle self, oidc::OidcService& oidc,
                                     int max_token_attempts)
    : host_(host),
      self_(std::move(self)),
      oidc_(oidc),
      flow_(settings_of(oidc, max_token_attempts)) {}

InteractiveSignIn::~InteractiveSignIn() {
  // The session is going away: never answer a message here (its connection may be gone).
  if (device_flow_) oidc_.cancel(device_flow_);
  if (prompt_timer_) self_.cancel(prompt_timer_);
}

void InteractiveSignIn::on_keyboard_interactive(ssh::Message m) {
  ssh_message msg = m.get();
  if (!ssh_message_auth_kbdint_is_response(msg))
    return run(flow_.on_keyboard_interactive(host_.device_flow_allowed()), std::move(m));
  std::string answer;
  ssh_session session = host_.downstream();
  if (ssh_userauth_kbdint_getnanswers(session) > 0) {
    const char* a = ssh_userauth_kbdint_getanswer(session, 0);
    answer = a ? a : "";
  }
  run(flow_.on_answer(answer), std::move(m));
}

void InteractiveSignIn::on_password(ssh::Message m) {
  const char* pw = ssh::auth_password(m.get());
  std::string password = pw ? pw : "";
  run(flow_.on_password(password), std::move(m));
}

void InteractiveSignIn::connection_lost() {
  run(flow_.on_connection_lost(), nullptr);
}

void InteractiveSignIn::run(SignInFlow::Steps steps, ssh::Message current) {
  using Verb = SignInFlow::Verb;
  using On = SignInFlow::On;
  for (auto& step : steps) {
    // The message a step answers: it is released from where it was kept before it is used.
    ssh::Message msg;
    if (step.on == On::kCurrent) msg = std::move(current);
    if (step.on == On::kHeld) msg = std::move(held_);
    switch (step.verb) {
      case Verb::kHold:
        held_ = std::move(msg);
        break;
      case Verb::kStartDeviceFlow: {
        // The provider answers on its own thread.
        device_flow_ = oidc_.start_device_flow(
            [self = self_](const oidc::DeviceCode& code) {
              self.post([code](InteractiveSignIn& s) { s.run(s.flow_.on_code(code), nullptr); });
            },
            [self = self_](oidc::SignInResult result) {
              self.post([result = std::move(result)](InteractiveSignIn& s) mutable {
                s.device_flow_ = 0;
                s.run(s.flow_.on_result(std::move(result), "oidc-device"), nullptr);
              });
            });
        break;
      }
      case Verb::kCancelDeviceFlow:
        if (device_flow_) oidc_.cancel(device_flow_);
        device_flow_ = 0;
        break;
      case Verb::kValidateToken: {
        oidc_.validate_workload_token(step.text, [self = self_](oidc::SignInResult result) {
          self.post([result = std::move(result)](InteractiveSignIn& s) mutable {
            s.run(s.flow_.on_result(std::move(result), "workload-jwt"), nullptr);
          });
        });
        break;
      }
      case Verb::kAskForCode:
        if (msg) ask_for_code(msg.get(), step.prompt);
        break;
      case Verb::kAskForToken:
        if (msg) ask_for_token(msg.get());
        break;
      case Verb::kSucceed:
        if (msg) host_.signed_in(step.result, std::move(msg));
        break;
      case Verb::kFail:
        // The reason goes out first: after the failure a client may hang up without reading more.
        host_.sign_in_failed(step.text, step.result);
        // `ssh -q` hides banners, instructions and the disconnect message; it shows prompts. A
        // person's failed sign-in is told once more as a last prompt: OpenSSH shows it (and
        // waits for Enter) before it reads the disconnect that follows.
        if (msg && step.text != "workload-jwt" &&
            ssh_message_subtype(msg.get()) == SSH_AUTH_METHOD_INTERACTIVE)
          tell_failure(msg.get(), step.result.user_message);
        else if (msg)
          ssh_message_reply_default(msg.get());
        break;
      case Verb::kDecline:
        if (msg) ssh_message_reply_default(msg.get());
        break;
      case Verb::kDrop:
        break;  // `msg` is freed unanswered when it goes out of scope
      case Verb::kStartPromptTimer:
        prompt_timer_ = self_.after(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        oidc_.config().device.prompt_delay),
                                    [](InteractiveSignIn& s) {
                                      s.prompt_timer_ = 0;
                                      s.run(s.flow_.on_prompt_timer(), nullptr);
                                    });
        break;
      case Verb::kCancelPromptTimer:
        if (prompt_timer_) self_.cancel(prompt_timer_);
        prompt_timer_ = 0;
        break;
    }
  }
  // Every input's message is answered or held by its steps; one left over is refused rather than
  // leaving the client waiting.
  if (current) ssh_message_reply_default(current.get());
}

void InteractiveSignIn::tell_failure(ssh_message to, const std::string& why) {
  std::string text = printable(why, 300, false);
  if (!text.empty() && text.back() != '.') text += '.';
  std::string prompt = "castgate: sign-in failed: " + text + " Press Enter to close. ";
  const char* prompts[] = {prompt.c_str()};
  char echo[] = {0};
  ssh_message_auth_interactive_request(to, "", "", 1, prompts, echo);
}

void InteractiveSignIn::ask_for_token(ssh_message to) {
  const char* prompts[] = {"Workload token: "};
  char echo[] = {0};
  ssh_message_auth_interactive_request(to, "castgate", "Sign in with a workload token.", 1, prompts,
                                       echo);
}

void InteractiveSignIn::ask_for_code(ssh_message to, bool with_prompt) {
  const auto& cfg = oidc_.config().device;
  if (!flow_.code()) return;
  const auto& code = *flow_.code();
  std::string where = code.verification_uri_complete.empty() ? code.verification_uri
                                                             : code.verification_uri_complete;
  if (!code_announced_) {
    code_announced_ = true;
    host_.sign_in_progress("auth.device_code",
                           "verification at " + printable(code.verification_uri, 200));
  }
  // The deadline castgate keeps (the code's life unless device_flow.timeout is shorter), in
  // whole minutes as providers give them.
  auto valid = code.valid_for.count();
  std::string valid_text = valid >= 120  ? std::to_string(valid / 60) + " minutes"
                           : valid >= 60 ? "1 minute"
                                         : std::to_string(valid) + " seconds";
  std::string instruction = "castgate: sign in to continue.\n  Open:  " + where +
                            "\n  Code:  " + code.user_code + "  (valid for " + valid_text + ")\n";
  if (with_prompt) {
    // The prompt is the only text `ssh -q` shows, and OpenSSH writes it whole: it carries the
    // URL and code on its own, and the QR code (which the instruction would cut, see qr.h).
    std::string qr = cfg.qr ? oidc::terminal_qr(where, kQrMaxLines) : std::string();
    std::string prompt = (qr.empty() ? "" : "\n" + qr) + "Open " + code.verification_uri +
                         " and enter code " + code.user_code + ", then press Enter: ";
    const char* prompts[] = {prompt.c_str()};
    char echo[] = {1};
    ssh_message_auth_interactive_request(to, "castgate sign-in", instruction.c_str(), 1, prompts,
                                         echo);
  } else {
    ssh_message_auth_interactive_request(to, "castgate sign-in", instruction.c_str(), 0, nullptr,
                                         nullptr);
  }
}

}  // namespace castgate
