// The sign-in state machine under any order of inputs a client, the identity provider and the
// clock can produce: requests, answers (tokens or not), passwords, codes, verdicts, timers and
// the connection going away. Checked against a model of the messages: every message that comes
// in is answered or held exactly once, a held message is answered or dropped exactly once, no
// second device flow starts while one runs, at most the configured number of tokens is
// validated, and nothing at all happens after the connection is gone.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/sign_in_flow.h"

using namespace castgate;
using Verb = SignInFlow::Verb;
using On = SignInFlow::On;

namespace {

struct Model {
  bool held = false;
  bool flow = false;
  bool gone = false;
  int tokens = 0;
  int max_tokens = 0;

  // Checks the steps of one input; `with_message`: the input came with a message.
  void check(const SignInFlow::Steps& steps, bool with_message) {
    int current_uses = 0;
    for (const auto& s : steps) {
      if (gone && s.verb != Verb::kDecline) std::abort();
      if (s.on == On::kCurrent) {
        if (!with_message) std::abort();
        ++current_uses;
        if (s.verb == Verb::kHold) {
          if (held) std::abort();  // two held messages
          held = true;
        }
      } else if (s.on == On::kHeld) {
        if (!held) std::abort();  // answering a message that is not held
        held = false;
      }
      switch (s.verb) {
        case Verb::kStartDeviceFlow:
          if (flow) std::abort();
          flow = true;
          break;
        case Verb::kCancelDeviceFlow:
          if (!flow) std::abort();
          flow = false;
          break;
        case Verb::kValidateToken:
          if (++tokens > max_tokens) std::abort();
          break;
        case Verb::kDrop:
          if (s.on != On::kHeld) std::abort();
          break;
        case Verb::kAskForCode:
        case Verb::kSucceed:
        case Verb::kFail:
        case Verb::kDecline:
        case Verb::kAskForToken:
        case Verb::kHold:
          if (s.on == On::kNothing) std::abort();
          break;
        default:
          break;
      }
    }
    if (with_message && current_uses != 1) std::abort();  // answered or held exactly once
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  SignInFlow::Settings settings;
  settings.people = data[0] & 1;
  settings.workloads = data[0] & 2;
  settings.prompt = static_cast<oidc::PromptMode>((data[0] >> 2) % 3);
  settings.max_token_attempts = 1 + (data[0] >> 4) % 4;
  SignInFlow flow(settings);
  Model m;
  m.max_tokens = settings.max_token_attempts;
  const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
  for (size_t i = 1; i < size; ++i) {
    uint8_t op = data[i];
    switch (op % 9) {
      case 0:
        m.check(flow.on_keyboard_interactive(op & 0x10), true);
        break;
      case 1:
        m.check(flow.on_answer((op & 0x10) ? jwt : ""), true);
        break;
      case 2:
        m.check(flow.on_password((op & 0x10) ? jwt : "hunter2"), true);
        break;
      case 3: {
        oidc::DeviceCode code;
        code.user_code = "ABCD-EFGH";
        code.verification_uri = "https://idp.example/device";
        m.check(flow.on_code(code), false);
        break;
      }
      case 4:
      case 5: {
        oidc::SignInResult r;
        r.ok = op & 0x10;
        r.identity.subject = "oidc:x";
        m.check(flow.on_result(r, (op % 9) == 4 ? "oidc-device" : "workload-jwt"), false);
        if ((op % 9) == 4 && m.flow && !flow.device_flow_running()) m.flow = false;
        break;
      }
      case 6:
        m.check(flow.on_prompt_timer(), false);
        break;
      case 7:
        if (!m.gone) {
          m.check(flow.on_connection_lost(), false);
          if (m.held || flow.holding()) std::abort();  // the held message was dropped
          m.flow = false;
          m.gone = true;
        }
        break;
      default:
        break;
    }
    if (m.held != flow.holding()) std::abort();
    if (m.flow != flow.device_flow_running()) std::abort();
  }
  return 0;
}
