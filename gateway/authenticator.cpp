#include "gateway/authenticator.h"

#include <algorithm>

#include "common/clock.h"
#include "common/text.h"
#include "gateway/presented_certificate.h"
#include "gateway/router.h"
#include "gateway/ssh_keys.h"
#include "gateway/ssh_messages.h"
#include "gateway/ssh_wire.h"

namespace castgate {

using asciicast::EventKind;
using nlohmann::json;

Authenticator::Authenticator(GatewayContext& context, Connection& connection,
                             InteractiveSignIn::Handle interactive, std::string listener_target,
                             std::string peer_address, const JumpOrigin* jump)
    : context_(context),
      connection_(connection),
      interactive_handle_(std::move(interactive)),
      listener_target_(std::move(listener_target)),
      peer_address_(std::move(peer_address)),
      jump_(jump) {}

Authenticator::~Authenticator() = default;

void Authenticator::connection_lost() {
  if (interactive_) interactive_->connection_lost();
}

void Authenticator::send_banner_once() {
  if (banner_sent_) return;
  banner_sent_ = true;
  const auto& banner = context_.config.banner;
  if (banner.empty()) return;
  std::string text = banner;
  if (text.back() != '\n') text += '\n';
  ssh::String s(ssh_string_from_char(text.c_str()));
  if (s) ssh_send_issue_banner(connection_.downstream(), s.get());
}

json Authenticator::attempted_user() const {
  // Who tried to sign in, as far as the connection says: the login and target the SSH user name
  // asks for (ECS user.name and destination.address, Splunk CIM's user and dest).
  std::string login, target;
  split_user(last_ssh_user_, login, target);
  if (target.empty()) target = listener_target_;
  json f = json::object();
  if (!login.empty()) f["user"]["name"] = login;
  if (!target.empty()) f["destination"]["address"] = target;
  if (!login.empty()) f["related"]["user"] = json::array({login});
  return f;
}

void Authenticator::auth_failed(const std::string& method, const std::string& reason) {
  ++auth_failures_;
  json f = attempted_user();
  f["castgate"] = {{"auth_method", method}, {"ssh_user", last_ssh_user_}};
  connection_.log().emit(EventKind{"auth.failure", "failure", reason}, std::move(f));
  if (auth_failures_ >= context_.config.max_auth_attempts)
    connection_.close(asciicast::EndReason::kTooManyAuthFailures, "");
}

void Authenticator::handle(ssh::Message m) {
  ssh_message msg = m.get();
  send_banner_once();
  const char* user = ssh_message_auth_user(msg);
  // INFO_RESPONSE packets carry no user name: keep the one of the request.
  if (user && *user) {
    requested_user_ = user;
    last_ssh_user_ = printable(user, 128);
  }
  if (succeeded_) {
    ssh_message_reply_default(msg);
    return;
  }
  auto& ctx = context_;
  // No signer, no signed record (nor certificate): the recording is unavailable too.
  if (ctx.sink->health() != asciicast::SinkHealth::kHealthy || ctx.signer->gone()) {
    ssh::String s(ssh_string_from_char(
        "castgate: session recording is unavailable, so new sessions are refused. Try again "
        "later.\n"));
    if (s) ssh_send_issue_banner(connection_.downstream(), s.get());
    ssh_message_reply_default(msg);
    connection_.close(asciicast::EndReason::kRecordingUnavailable, "");
    return;
  }
  if (ctx.draining.load()) {
    ssh_message_reply_default(msg);
    connection_.close(asciicast::EndReason::kGatewayDraining, "");
    return;
  }
  if (jump_) return handle_jump_auth(std::move(m));
  switch (ssh_message_subtype(msg)) {
    case SSH_AUTH_METHOD_PUBLICKEY:
      return handle_publickey(std::move(m));
    case SSH_AUTH_METHOD_NONE:
      ssh_message_reply_default(msg);
      return;
    case SSH_AUTH_METHOD_INTERACTIVE:
    case SSH_AUTH_METHOD_PASSWORD: {
      if (!ctx.oidc) return refuse_unregistered_keys(std::move(m));
      if (!interactive_)
        interactive_ = std::make_unique<InteractiveSignIn>(*this, interactive_handle_, *ctx.oidc,
                                                           ctx.config.max_token_attempts);
      if (ssh_message_subtype(msg) == SSH_AUTH_METHOD_PASSWORD)
        return interactive_->on_password(std::move(m));
      return interactive_->on_keyboard_interactive(std::move(m));
    }
    default:
      ssh_message_reply_default(msg);
      auth_failed("other", "unsupported authentication method");
  }
}

void Authenticator::send_text_banner(const std::string& text) {
  // Banners quote untrusted text (the provider's messages, what the user typed): every line is
  // made harmless to the user's terminal.
  std::string safe;
  for (const auto& line : split(text, '\n', false))
    if (!line.empty()) safe += printable(line, 4096, false) + "\n";
  ssh::String s(ssh_string_from_char(safe.c_str()));
  if (s) ssh_send_issue_banner(connection_.downstream(), s.get());
}

void Authenticator::refuse_unregistered_keys(ssh::Message m) {
  // The user's keys are exhausted: say which ones were not recognised.
  std::string text = "castgate: none of the keys you offered is registered to an identity";
  if (!offered_keys_.empty()) {
    text += " (";
    for (size_t i = 0; i < offered_keys_.size() && i < 5; ++i)
      text += (i ? ", " : "") + offered_keys_[i];
    text += ")";
  }
  text += ". Ask your administrator to register your public key.\n";
  send_text_banner(text);
  int method = ssh_message_subtype(m.get());
  ssh_message_reply_default(m.get());
  auth_failed(method == SSH_AUTH_METHOD_PASSWORD ? "password" : "keyboard-interactive",
              "no sign-in method available besides registered public keys");
}

bool Authenticator::device_flow_allowed() {
  return context_.device_sign_ins->allow(peer_address_, clock().steady_now());
}

void Authenticator::sign_in_progress(const std::string& action, const std::string& detail) {
  connection_.log().emit(EventKind{action, "", detail},
                         json{{"castgate", {{"ssh_user", last_ssh_user_}}}});
}

void Authenticator::signed_in(const oidc::SignInResult& result, ssh::Message reply_to) {
  auto& ctx = context_;
  std::string detail = result.identity.auth_method;
  if (!verified_key_.empty()) proven_keys_.push_back(verified_key_);
  if (result.expires != std::chrono::system_clock::time_point{})
    credential_expires_ = result.expires;
  if (!verified_key_.empty() && ctx.oidc && ctx.oidc->config().key_binding_ttl.count() > 0 &&
      result.identity.kind == IdentityKind::kHuman) {
    auto until = std::min(clock().now() + ctx.oidc->config().key_binding_ttl, result.expires);
    bool same_source = ctx.oidc->config().key_binding_same_source;
    ctx.key_bindings.bind(verified_key_, result.identity, until, same_source ? peer_address_ : "");
    detail += "; key " + ssh::fingerprint_sha256(verified_key_) + " bound until " +
              rfc3339_micros(until) + (same_source ? " for " + source_block(peer_address_) : "");
  }
  accept(result.identity, std::move(reply_to), detail);
}

void Authenticator::sign_in_failed(const std::string& method, const oidc::SignInResult& result) {
  send_text_banner("castgate: sign-in failed: " + result.user_message + "\n");
  json f = attempted_user();
  f["castgate"] = {{"auth_method", method},
                   {"auth_error", result.error},
                   {"auth_detail", result.detail},
                   {"ssh_user", last_ssh_user_}};
  f["error"] = {{"code", result.error}, {"message", result.user_message}};
  connection_.log().emit(EventKind{"auth.failure", "failure", result.user_message}, std::move(f));
  // A rejected workload token may be followed by another on this connection, up to
  // --max-token-attempts (the sign-in flow refuses the one after with too_many_tokens). Any other
  // failure ends the connection: no retry loop, every attempt would start another sign-in at the
  // provider.
  if (method == "workload-jwt" && result.error != "too_many_tokens") return;
  connection_.close(asciicast::EndReason::kSignInFailed, "sign-in failed: " + result.user_message);
}

bool Authenticator::key_proven(ssh_message msg, int key_state, const std::string& method,
                               const std::string& key) {
  if (key_state == SSH_PUBLICKEY_STATE_NONE) {  // a query: "would you take this key?"
    ssh_message_auth_reply_pk_ok_simple(msg);
    return false;
  }
  if (key_state != SSH_PUBLICKEY_STATE_VALID) {
    ssh_message_reply_default(msg);
    auth_failed(method, "bad signature for " + key);
    return false;
  }
  return true;
}

void Authenticator::handle_publickey(ssh::Message m) {
  ssh_message msg = m.get();
  std::string blob = ssh::public_key_blob(ssh::auth_pubkey(msg));
  int key_state = ssh::auth_pubkey_state(msg);
  std::string fp = blob.empty() ? "?" : ssh::fingerprint_sha256(blob);
  const Identity* identity = blob.empty() ? nullptr : context_.identities.find(blob);
  std::optional<Identity> bound;
  auto& ctx = context_;
  if (!blob.empty() && is_certificate_key_type(ssh::blob_key_type(blob))) {
    auto check = check_presented_certificate(blob, ctx.identities, clock().now(), peer_address_);
    if (!check) {
      ssh_message_reply_default(msg);
      auth_failed("certificate", check.error().detail);
      return;
    }
    if (!key_proven(msg, key_state, "certificate", "certificate " + fp)) return;
    certificate_principals_ = check->principals;
    has_certificate_ = true;
    proven_keys_.push_back(blob);
    credential_expires_ = std::chrono::system_clock::time_point(std::chrono::seconds(
        static_cast<int64_t>(std::min<uint64_t>(check->valid_before, INT64_MAX))));
    accept(check->identity, std::move(m), "certificate " + fp + " key id " + check->identity.name);
    return;
  }
  if (!identity && !blob.empty()) {
    std::chrono::system_clock::time_point until{};
    bound = ctx.key_bindings.find(blob, clock().now(), peer_address_, &until);
    if (bound) {
      identity = &*bound;
      credential_expires_ = until;
    }
  }
  if (!identity && !blob.empty() && ctx.oidc && ctx.oidc->people_enabled()) {
    // Not registered, but it can be bound to a person after a device sign-in: have the client
    // prove it holds the key, then ask for the sign-in (partial success).
    if (key_state == SSH_PUBLICKEY_STATE_NONE) {
      ssh_message_auth_reply_pk_ok_simple(msg);
      return;
    }
    if (key_state == SSH_PUBLICKEY_STATE_VALID && verified_key_.empty()) {
      verified_key_ = blob;
      ssh_set_auth_methods(connection_.downstream(), SSH_AUTH_METHOD_INTERACTIVE);
      ssh_message_auth_reply_success(msg, 1);
      sign_in_progress("auth.partial",
                       "key " + fp + " verified; sign-in with the identity provider required");
      return;
    }
  }
  if (!identity) {
    if (std::find(offered_keys_.begin(), offered_keys_.end(), fp) == offered_keys_.end())
      offered_keys_.push_back(fp);
    ssh_message_reply_default(msg);
    auth_failed("publickey", "unknown public key " + fp);
    return;
  }
  if (!key_proven(msg, key_state, "publickey", "key " + fp)) return;
  proven_keys_.push_back(blob);
  if (bound) binding_key_ = blob;
  accept(*identity, std::move(m), bound ? fp + " (bound after a device sign-in)" : fp);
}

void Authenticator::handle_jump_auth(ssh::Message m) {
  ssh_message msg = m.get();
  const JumpOrigin& origin = *jump_;
  std::string how = "through ProxyJump session " + origin.outer_session;
  int subtype = ssh_message_subtype(msg);
  if (origin.expires && clock().now() >= *origin.expires) {
    send_text_banner(
        "castgate: the sign-in of your connection to the gateway expired; connect "
        "again.\n");
    ssh_message_reply_default(msg);
    auth_failed("jump",
                "the outer connection's sign-in expired at " + rfc3339_micros(*origin.expires));
    return connection_.close(asciicast::EndReason::kSignInExpired, "");
  }
  if (subtype == SSH_AUTH_METHOD_NONE && origin.proven_keys.empty()) {
    // The outer connection signed in without a key (a device or workload sign-in): the channel
    // this connection travels in is the only binding there is, and the only one needed.
    return accept_jump(std::move(m), how);
  }
  if (subtype == SSH_AUTH_METHOD_PUBLICKEY) {
    std::string blob = ssh::public_key_blob(ssh::auth_pubkey(msg));
    if (!blob.empty() && std::find(origin.proven_keys.begin(), origin.proven_keys.end(), blob) !=
                             origin.proven_keys.end()) {
      std::string fp = ssh::fingerprint_sha256(blob);
      if (!key_proven(msg, ssh::auth_pubkey_state(msg), "jump", "key " + fp)) return;
      return accept_jump(std::move(m), how + ", key " + fp);
    }
    // Another key of the client's: not the one that signed in outside. Not a failed attempt;
    // the request budget bounds how many are tried.
    ssh_message_reply_default(msg);
    return;
  }
  if (subtype != SSH_AUTH_METHOD_NONE) {
    send_text_banner(
        "castgate: this connection came through a ProxyJump to the gateway and signs in with the "
        "key that signed in there; it was not offered.\n");
    ssh_message_reply_default(msg);
    auth_failed("jump", "the inner connection did not offer the key of the outer one");
    return;
  }
  ssh_message_reply_default(msg);
}

void Authenticator::accept_jump(ssh::Message m, const std::string& detail) {
  // The outer certificate bounds the inner login too.
  if (jump_->has_certificate) {
    has_certificate_ = true;
    certificate_principals_ = jump_->certificate_principals;
  }
  accept(jump_->identity, std::move(m), detail);
}

void Authenticator::accept(const Identity& identity, ssh::Message m, const std::string& detail) {
  succeeded_ = true;
  connection_.accept_identity(identity, std::move(m), detail);
}

void Authenticator::forget_key_bindings() {
  auto& bindings = context_.key_bindings;
  if (!verified_key_.empty()) bindings.forget(verified_key_);
  if (!binding_key_.empty()) bindings.forget(binding_key_);
  // Through a ProxyJump the sign-in was the outer connection's: its keys' bindings too.
  if (jump_)
    for (const auto& key : jump_->proven_keys) bindings.forget(key);
}

}  // namespace castgate
