#include "gateway/session.h"

#include "gateway/presented_certificate.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/fault_injection.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/ssh_messages.h"
#include "gateway/ssh_wire.h"
#include "gateway/user_certificate_signer.h"
#include "gateway/worker.h"

namespace castgate {

using asciicast::EventKind;
using nlohmann::json;

void split_user(const std::string& ssh_user, std::string& login, std::string& target) {
  size_t at = ssh_user.find('@');
  if (at == std::string::npos) {
    login = ssh_user;
    target.clear();
  } else {
    login = ssh_user.substr(0, at);
    target = ssh_user.substr(at + 1);
  }
}

namespace {

constexpr const char* kReloadedMessage =
    "castgate's configuration was reloaded; connect again to continue under the rules in force";
constexpr auto kCloseGrace = std::chrono::seconds(3);
constexpr auto kRefusedLinger = std::chrono::seconds(30);
// ProxyJump channels of one connection whose inner connection is still signing in: each costs a
// key exchange, and none of them counts against --max-startups (the outer connection did).
constexpr size_t kMaxJumpsSigningIn = 4;
// The inner connection of a ProxyJump signs in without a person or a provider in the loop.
constexpr auto kJumpSignInTimeout = std::chrono::seconds(20);

std::string key_blob_of(ssh_key key) {
  char* b64 = nullptr;
  if (!key || ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || !b64) return {};
  ssh::CharPtr owner(b64);
  auto blob = base64_decode(b64);
  return blob ? *blob : std::string();
}
}  // namespace

Session::Session(Worker& worker, std::string id, int fd, ListenSpec listener,
                 asciicast::Endpoint peer, std::optional<JumpOrigin> jump)
    : worker_(worker),
      id_(std::move(id)),
      listener_(std::move(listener)),
      peer_(std::move(peer)),
      counted_unauthenticated_(!jump),  // the outer connection was the one counted
      jump_(std::move(jump)),
      fd_(fd) {
  auto& ctx = worker_.context();
  asciicast::SessionLogOptions opts;
  opts.instance = ctx.config.instance;
  opts.max_line = ctx.config.max_line;
  opts.signing_key = ctx.signer.get();
  opts.ledger = ctx.checkpoints;
  opts.searchable_text = ctx.config.searchable_text;
  opts.observer = ctx.event_observer;
  auto backlog =
      std::make_shared<asciicast::Backlog>(ctx.config.session_backlog, worker_.make_waker(id_));
  if (ctx.session_table) {
    auto lease = ctx.session_table->open(id_);
    if (lease)
      backlog->attach(std::move(lease));
    else
      untracked_ = true;  // refused in start(): a crash would leave its record unclosed
  }
  log_ = std::make_unique<asciicast::SessionLog>(opts, id_, peer_, *ctx.sink, std::move(backlog),
                                                 *ctx.clock);
  started_at_ = last_activity_ = ctx.clock->steady_now();
}

Session::~Session() {
  release_unauthenticated();
  unwatch();
  sign_in_.reset();  // before the downstream session its held message belongs to
  pairs_.clear();
  tunnels_.clear();
  upstream_.reset();
  if (down_event_ && down_) ssh_event_remove_session(down_event_.get(), down_.get());
  down_event_.reset();
  down_.reset();
}

void Session::unwatch() {
  if (fd_ >= 0 && interest_ != 0) worker_.loop().unwatch(fd_);
  interest_ = 0;
}

void Session::release_unauthenticated() {
  if (counted_unauthenticated_) {
    counted_unauthenticated_ = false;
    worker_.context().startup_done(peer_.address);
  }
}

void Session::guarded(const std::function<void()>& fn) noexcept {
  if (faulted_) return;
  try {
    fn();
  } catch (const std::exception& e) {
    fault(e.what());
  } catch (...) {
    fault("unknown exception");
  }
}

void Session::fault(const char* what) noexcept {
  if (faulted_) return;
  faulted_ = true;
  try {
    log::error("session " + id_ + ": internal error (" + what + "); closing this session only");
    close_reason_ = "internal_error";
    close_message_ = "castgate hit an internal error and closed this session";
    if (state_ != State::kClosed) {
      state_ = State::kClosing;
      finalize();
    }
    return;
  } catch (...) {
  }
  // The orderly teardown failed as well: write the last event as plainly as possible, then let
  // the worker drop the session.
  try {
    state_ = State::kClosed;
    unwatch();
    if (down_ && ssh_is_connected(down_.get())) ssh_disconnect(down_.get());
    log_->end(EventKind{"session.end", "", "internal_error"},
              json{{"castgate", {{"end_reason", "internal_error"}}}});
  } catch (...) {
  }
  try {
    worker_.session_finished(id_);
  } catch (...) {
  }
}

const Clock& Session::clock() const {
  return *worker_.context().clock;
}
bool Session::recording_enabled() const {
  return worker_.context().config.recording_enabled;
}

const asciicast::AlertRules* Session::alert_rules() const {
  return &worker_.context().alerts;
}

void Session::start() {
  auto& ctx = worker_.context();
  json accepted{{"castgate",
                 {{"listener", listener_.text()},
                  {"worker", {{"index", ctx.worker_index}, {"pid", getpid()}}}}}};
  if (jump_)
    accepted["castgate"]["jump"] = {{"outer_session", jump_->outer_session},
                                    {"target", jump_->target}};
  accepted["network"] = {{"protocol", "ssh"}, {"transport", "tcp"}};
  log_->emit(EventKind{"connection.accepted", "", ""}, std::move(accepted));
  if (untracked_) {
    log::error("session " + id_ + ": the worker's session table is full; connection refused");
    ::close(fd_);
    fd_ = -1;
    close("gateway_full", "");
    return;
  }
  down_.reset(ssh_new());
  if (!down_ || ssh_bind_accept_fd(worker_.bind(), down_.get(), fd_) != SSH_OK) {
    log::warn("session " + id_ + ": cannot set up the SSH server session");
    if (!down_) ::close(fd_);
    fd_ = -1;
    close("internal_error", "");
    return;
  }
  ssh_session s = down_.get();
  ssh_set_blocking(s, 0);
  int methods = SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_INTERACTIVE;
  if (worker_.context().oidc && worker_.context().oidc->workloads_enabled())
    methods |= SSH_AUTH_METHOD_PASSWORD;
  if (jump_) methods = SSH_AUTH_METHOD_PUBLICKEY;
  ssh_set_auth_methods(s, methods);
  if (ssh_handle_key_exchange(s) == SSH_ERROR) {
    close("handshake_failed", "");
    return;
  }
  down_event_.reset(ssh_event_new());
  if (!down_event_ || ssh_event_add_session(down_event_.get(), s) != SSH_OK) {
    close("internal_error", "");
    return;
  }
  interest_ = EPOLLIN;
  worker_.loop().watch(fd_, interest_, this);
  (void)ctx;
  step();
}

void Session::on_fd_ready(int, uint32_t) {
  if (!down_event_ || state_ == State::kClosed) return;
  // libssh reads 4 KiB per poll; take a few rounds before relaying, fewer wake-ups per byte.
  for (int i = 0;
       i < 8 && ssh_event_dopoll(down_event_.get(), 0) == SSH_OK && state_ != State::kClosed; ++i) {
  }
  step();
}

void Session::request_step() {
  if (step_scheduled_ || state_ == State::kClosed) return;
  step_scheduled_ = true;
  std::weak_ptr<int> alive = alive_;
  worker_.loop().defer([this, alive] {
    if (alive.expired()) return;
    step_scheduled_ = false;
    guarded([this] { step(); });
  });
}

void Session::step() {
  if (in_step_) {
    step_again_ = true;
    return;
  }
  in_step_ = true;
  int rounds = 0;
  do {
    step_again_ = false;
    step_once();
  } while (step_again_ && ++rounds < 8 && state_ != State::kClosed);
  in_step_ = false;
  if (step_again_) request_step();
}

void Session::step_once() {
  if (state_ == State::kClosed || !down_) return;
  ssh_session s = down_.get();
  // The socket was closed by libssh (peer gone): forget it before the number is reused. After a
  // protocol error (a packet too long, a bad MAC) libssh keeps the socket open and parses
  // nothing more, yet appends whatever the peer goes on sending to its input buffer: stop
  // reading.
  bool broken = ssh_get_fd(s) >= 0 && (ssh_get_status(s) & SSH_CLOSED_ERROR);
  if (fd_ >= 0 && (ssh_get_fd(s) < 0 || broken)) {
    unwatch();
    fd_ = -1;
  }
  if (state_ == State::kHandshake) {
    int rc = ssh_handle_key_exchange(s);
    if (rc == SSH_AGAIN) return update_interest();
    if (rc != SSH_OK) return close("handshake_failed", "");
    state_ = State::kAuthenticating;
    log_->emit(EventKind{"connection.handshake", "", ""},
               json{{"castgate",
                     {{"client_banner",
                       printable(ssh_get_clientbanner(s) ? ssh_get_clientbanner(s) : "", 128)}}}});
  }
  if (state_ == State::kAuthenticating || state_ == State::kAuthenticated) {
    int handled = 0;
    while (state_ != State::kClosed && state_ != State::kClosing && handled < 64) {
      ssh_message m = ssh_message_get(s);
      if (!m) break;
      ++handled;
      handle_message(ssh::Message(m));
    }
  }
  if (state_ == State::kClosed) return;
  if (!ssh_is_connected(s) || fd_ < 0) {
    if (sign_in_) sign_in_->connection_lost();
    if (state_ != State::kClosing) {
      std::string reason = broken ? "protocol_error" : "user disconnected";
      close_reason_ = reason;
      for (auto& [id, pair] : pairs_) pair->terminate("", reason);
      state_ = State::kClosing;
      closing_deadline_ = clock().steady_now() + kCloseGrace;
    }
  }
  if (upstream_ && upstream_->state() == Upstream::State::kReady &&
      (!ssh_is_connected(upstream_->session()) ||
       (ssh_get_status(upstream_->session()) & SSH_CLOSED_ERROR)) &&
      state_ == State::kAuthenticated) {
    close("target_disconnected", "the connection to " + target_name_ + " was lost");
  }
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    it->second->step();
    if (it->second->finished()) {
      it = pairs_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = tunnels_.begin(); it != tunnels_.end();) {
    it->second->step();
    if (it->second->finished()) {
      end_jump(*it->second, "closed");
      it = tunnels_.erase(it);
      last_jump_end_ = clock().steady_now();
    } else {
      ++it;
    }
  }
  // Closing: the inner sessions of ProxyJump channels see their socket close and end on their
  // own, each with its end event.
  if (state_ == State::kClosing) {
    for (auto& [id, tunnel] : tunnels_)
      end_jump(*tunnel, close_reason_.empty() ? "session closed" : close_reason_);
    tunnels_.clear();
  }
  if (state_ == State::kClosing && (pairs_.empty() || clock().steady_now() >= closing_deadline_)) {
    // Let what is queued for the user (messages, the last output) leave before hanging up;
    // libssh would drop it when it closes the socket.
    bool pending = fd_ >= 0 && ssh_is_connected(s) && (ssh_get_poll_flags(s) & SSH_WRITE_PENDING);
    if (!pending || clock().steady_now() >= closing_deadline_) {
      finalize();
      return;
    }
  }
  update_interest();
  if (upstream_) upstream_->update_interest();
}

void Session::update_interest() {
  if (fd_ < 0 || !down_) return;
  uint32_t want = EPOLLIN;
  if (ssh_get_poll_flags(down_.get()) & SSH_WRITE_PENDING) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    worker_.loop().modify(fd_, want);
  }
}

bool Session::spend_request_budget() {
  const double rate = config().max_request_rate, burst = rate * 10;
  auto now = clock().steady_now();
  if (request_tokens_at_ == std::chrono::steady_clock::time_point{}) request_tokens_ = burst;
  double elapsed = std::chrono::duration<double>(now - request_tokens_at_).count();
  if (request_tokens_at_ != std::chrono::steady_clock::time_point{})
    request_tokens_ = std::min(burst, request_tokens_ + elapsed * rate);
  request_tokens_at_ = now;
  if (request_tokens_ < 1) return false;
  request_tokens_ -= 1;
  return true;
}

void Session::limit_exceeded(const std::string& limit, const std::string& detail) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  log_->emit(EventKind{"limit.exceeded", "failure", detail},
             json{{"castgate", {{"limit", limit}}}});
  log::warn("session " + id_ + ": " + detail + "; disconnecting " + peer_.address);
  close("limit_exceeded", detail + "; the connection was closed");
  // No grace for a peer past a limit: one that ignores the window may ignore our CLOSE too, and
  // libssh buffers whatever it goes on sending until the socket is closed.
  closing_deadline_ = clock().steady_now();
}

const GatewayConfig& Session::config() const {
  return worker_.context().config;
}

bool Session::resize_terminal(int channel, long cells) {
  long others = 0;
  for (const auto& [id, n] : terminal_cells_)
    if (id != channel) others += n;
  if (cells <= 0) {
    terminal_cells_.erase(channel);
    return true;
  }
  if (others + cells > config().max_terminal_cells) return false;
  terminal_cells_[channel] = cells;
  return true;
}

void Session::handle_message(ssh::Message m) {
  int type = ssh_message_type(m.get());
  // Sign-in requests count too: a publickey query (answered PK_OK) or a keyboard-interactive
  // request declined while one is in progress is not a failed attempt, yet costs a lookup.
  if ((type == SSH_REQUEST_CHANNEL || type == SSH_REQUEST_GLOBAL ||
       type == SSH_REQUEST_CHANNEL_OPEN || type == SSH_REQUEST_AUTH) &&
      !spend_request_budget()) {
    ssh_message_reply_default(m.get());
    return limit_exceeded("request_rate", "more than " + std::to_string(config().max_request_rate) +
                                              " requests per second (--max-request-rate)");
  }
  switch (type) {
    case SSH_REQUEST_AUTH:
      return handle_auth(std::move(m));
    case SSH_REQUEST_SERVICE:
      ssh_message_service_reply_success(m.get());
      return;
    case SSH_REQUEST_CHANNEL_OPEN:
      return handle_channel_open(std::move(m));
    case SSH_REQUEST_CHANNEL:
      return handle_channel_request(std::move(m));
    case SSH_REQUEST_GLOBAL:
      if (ssh_message_subtype(m.get()) == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
        log_->emit(
            EventKind{"port_forward.denied", "failure", "remote port forwarding is not allowed"},
            json{{"castgate",
                  {{"forward",
                    {{"type", "remote"}, {"port", ssh_message_global_request_port(m.get())}}}}}});
      ssh_message_reply_default(m.get());
      return;
    default:
      ssh_message_reply_default(m.get());
  }
}

void Session::send_banner_once() {
  if (banner_sent_) return;
  banner_sent_ = true;
  const auto& banner = worker_.context().config.banner;
  if (banner.empty()) return;
  std::string text = banner;
  if (text.back() != '\n') text += '\n';
  ssh::String s(ssh_string_from_char(text.c_str()));
  if (s) ssh_send_issue_banner(down_.get(), s.get());
}

json Session::attempted_user() const {
  // Who tried to sign in, as far as the connection says: the login and target the SSH user name
  // asks for (ECS user.name and destination.address, Splunk CIM's user and dest).
  std::string login, target;
  split_user(last_ssh_user_, login, target);
  if (target.empty()) target = listener_.target;
  json f = json::object();
  if (!login.empty()) f["user"]["name"] = login;
  if (!target.empty()) f["destination"]["address"] = target;
  if (!login.empty()) f["related"]["user"] = json::array({login});
  return f;
}

void Session::auth_failed(const std::string& method, const std::string& reason) {
  ++auth_failures_;
  json f = attempted_user();
  f["castgate"] = {{"auth_method", method}, {"ssh_user", last_ssh_user_}};
  log_->emit(EventKind{"auth.failure", "failure", reason}, std::move(f));
  if (auth_failures_ >= worker_.context().config.max_auth_attempts)
    close("too_many_auth_failures", "");
}

void Session::handle_auth(ssh::Message m) {
  ssh_message msg = m.get();
  send_banner_once();
  const char* user = ssh_message_auth_user(msg);
  // INFO_RESPONSE packets carry no user name: keep the one of the request.
  if (user && *user) {
    requested_user_ = user;
    last_ssh_user_ = printable(user, 128);
  }
  if (authenticated_) {
    ssh_message_reply_default(msg);
    return;
  }
  auto& ctx = worker_.context();
  // No signer, no signed record (nor certificate): the recording is unavailable too.
  if (ctx.sink->health() != asciicast::SinkHealth::kHealthy || ctx.signer->gone()) {
    ssh::String s(ssh_string_from_char(
        "castgate: session recording is unavailable, so new sessions are refused. Try again "
        "later.\n"));
    if (s) ssh_send_issue_banner(down_.get(), s.get());
    ssh_message_reply_default(msg);
    close("recording_unavailable", "");
    return;
  }
  if (ctx.draining.load()) {
    ssh_message_reply_default(msg);
    close("gateway_draining", "");
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
      if (!sign_in_)
        sign_in_ =
            std::make_unique<InteractiveSignIn>(*this, *ctx.oidc, ctx.config.max_token_attempts);
      if (ssh_message_subtype(msg) == SSH_AUTH_METHOD_PASSWORD)
        return sign_in_->on_password(std::move(m));
      return sign_in_->on_keyboard_interactive(std::move(m));
    }
    default:
      ssh_message_reply_default(msg);
      auth_failed("other", "unsupported authentication method");
  }
}

void Session::send_text_banner(const std::string& text) {
  // Banners quote untrusted text (the provider's messages, what the user typed): every line is
  // made harmless to the user's terminal.
  std::string safe;
  for (const auto& line : split(text, '\n', false))
    if (!line.empty()) safe += printable(line, 4096, false) + "\n";
  ssh::String s(ssh_string_from_char(safe.c_str()));
  if (s) ssh_send_issue_banner(down_.get(), s.get());
}

void Session::refuse_unregistered_keys(ssh::Message m) {
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

EventLoop& Session::loop() {
  return worker_.loop();
}

InteractiveSignIn::Poster Session::sign_in_poster() {
  // Copied to the identity provider's thread: it names the session, it does not point at it.
  SessionRef session = ref();
  return [session](std::function<void(InteractiveSignIn&)> fn) {
    session.post([fn = std::move(fn)](Session& s) {
      if (!s.sign_in_ || s.state_ != State::kAuthenticating) return;
      fn(*s.sign_in_);
      // What the step queued may wait for the socket to be writable (libssh writes one packet,
      // then buffers until POLLOUT): watch for it, as after input from the client.
      s.request_step();
    });
  };
}

bool Session::device_flow_allowed() {
  return worker_.context().device_sign_ins->allow(peer_.address, clock().steady_now());
}

void Session::sign_in_progress(const std::string& action, const std::string& detail) {
  log_->emit(EventKind{action, "", detail}, json{{"castgate", {{"ssh_user", last_ssh_user_}}}});
}

void Session::signed_in(const oidc::SignInResult& result, ssh::Message reply_to) {
  auto& ctx = worker_.context();
  std::string detail = result.identity.auth_method;
  if (!verified_key_.empty()) proven_keys_.push_back(verified_key_);
  if (result.expires != std::chrono::system_clock::time_point{})
    credential_expires_ = result.expires;
  if (!verified_key_.empty() && ctx.oidc && ctx.oidc->config().key_binding_ttl.count() > 0 &&
      result.identity.kind == IdentityKind::kHuman) {
    auto until = std::min(clock().now() + ctx.oidc->config().key_binding_ttl, result.expires);
    bool same_source = ctx.oidc->config().key_binding_same_source;
    ctx.key_bindings.bind(verified_key_, result.identity, until, same_source ? peer_.address : "");
    detail += "; key " + ssh::fingerprint_sha256(verified_key_) + " bound until " +
              rfc3339_micros(until) + (same_source ? " for " + source_block(peer_.address) : "");
  }
  accept_identity(result.identity, std::move(reply_to), detail);
}

void Session::sign_in_failed(const std::string& method, const oidc::SignInResult& result) {
  send_text_banner("castgate: sign-in failed: " + result.user_message + "\n");
  json f = attempted_user();
  f["castgate"] = {{"auth_method", method},
                   {"auth_error", result.error},
                   {"auth_detail", result.detail},
                   {"ssh_user", last_ssh_user_}};
  f["error"] = {{"code", result.error}, {"message", result.user_message}};
  log_->emit(EventKind{"auth.failure", "failure", result.user_message}, std::move(f));
  // A rejected workload token may be followed by another on this connection, up to
  // --max-token-attempts (the sign-in flow refuses the one after with too_many_tokens). Any other
  // failure ends the connection: no retry loop, every attempt would start another sign-in at the
  // provider.
  if (method == "workload-jwt" && result.error != "too_many_tokens") return;
  close("sign_in_failed", "sign-in failed: " + result.user_message);
}

bool Session::key_proven(ssh_message msg, int key_state, const std::string& method,
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

void Session::handle_publickey(ssh::Message m) {
  ssh_message msg = m.get();
  std::string blob = key_blob_of(ssh::auth_pubkey(msg));
  int key_state = ssh::auth_pubkey_state(msg);
  std::string fp = blob.empty() ? "?" : ssh::fingerprint_sha256(blob);
  const Identity* identity = blob.empty() ? nullptr : worker_.context().identities.find(blob);
  std::optional<Identity> bound;
  auto& ctx = worker_.context();
  if (!blob.empty() && is_certificate_key_type(ssh::blob_key_type(blob))) {
    auto check = check_presented_certificate(blob, ctx.identities, clock().now(), peer_.address);
    if (!check.ok) {
      ssh_message_reply_default(msg);
      auth_failed("certificate", check.reason);
      return;
    }
    if (!key_proven(msg, key_state, "certificate", "certificate " + fp)) return;
    certificate_principals_ = check.principals;
    has_certificate_ = true;
    proven_keys_.push_back(blob);
    credential_expires_ = std::chrono::system_clock::time_point(std::chrono::seconds(
        static_cast<int64_t>(std::min<uint64_t>(check.valid_before, INT64_MAX))));
    accept_identity(check.identity, std::move(m),
                    "certificate " + fp + " key id " + check.identity.name);
    return;
  }
  if (!identity && !blob.empty()) {
    std::chrono::system_clock::time_point until{};
    bound = ctx.key_bindings.find(blob, clock().now(), peer_.address, &until);
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
      ssh_set_auth_methods(down_.get(), SSH_AUTH_METHOD_INTERACTIVE);
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
  accept_identity(*identity, std::move(m), bound ? fp + " (bound after a device sign-in)" : fp);
}

void Session::accept_identity(const Identity& identity, ssh::Message m, const std::string& detail) {
  std::string ssh_user = requested_user_;
  identity_ = identity;
  authenticated_ = true;
  release_unauthenticated();
  log_->set_identity(identity_);
  ssh_message_auth_reply_success(m.get(), 0);
  state_ = State::kAuthenticated;
  json f{{"castgate",
          {{"auth_method", identity_.auth_method},
           {"auth_detail", detail},
           {"ssh_user", printable(ssh_user, 128)}}}};
  // The factors the identity provider says the sign-in used, as it spelt them.
  if (!identity_.amr.empty()) f["castgate"]["amr"] = identity_.amr;
  if (!identity_.acr.empty()) f["castgate"]["acr"] = identity_.acr;
  log_->emit(EventKind{"auth.success", "success", ""}, std::move(f));
  authorize(ssh_user);
}

void Session::retire() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (!authenticated_) return close("config_reloaded", kReloadedMessage);
  if (!refusal_.empty() && pairs_.empty() && tunnels_.empty())
    return close("config_reloaded", kReloadedMessage);
}

void Session::enforce_locks(const Locks& locks) {
  if (!authenticated_ || state_ == State::kClosing || state_ == State::kClosed) return;
  const auto* lock = locks.match(identity_, target_ ? target_->name : target_name_);
  if (lock) close("locked", lock_message(*lock));
}

void Session::authorize(const std::string& ssh_user) {
  auto& ctx = worker_.context();
  std::string requested_target;
  split_user(ssh_user, login_, requested_target);
  auto deny = [&](const std::string& code, const std::string& message) {
    refusal_ = message;
    json fields{{"castgate",
                 {{"denial", code},
                  {"requested_target", printable(requested_target, 128)},
                  {"requested_login", printable(login_, 64)}}}};
    // No target named: the connection may be a ProxyJump's, which opens only direct-tcpip
    // channels; the denial is recorded if it asks for a shell or command.
    if (code == "no_target")
      deferred_denial_ = std::move(fields);
    else
      log_->emit(EventKind{"policy.denied", "failure", message}, std::move(fields));
  };
  if (!listener_.target.empty()) {
    if (!requested_target.empty() && requested_target != listener_.target) {
      target_name_ = listener_.target;
      return deny("listener_bound", "this address serves only " + listener_.target + ", not " +
                                        printable(requested_target, 64));
    }
    requested_target = listener_.target;
  }
  target_name_ = requested_target;
  if (login_.empty() || login_.size() > 64)
    return deny("bad_login", "the login name is missing or too long");
  if (requested_target.empty()) {
    std::string allowed;
    for (const auto& name : ctx.targets.names())
      if (ctx.policy.evaluate(identity_, name, login_).allowed)
        allowed += (allowed.empty() ? "" : ", ") + name;
    return deny("no_target", "choose a target with ssh " + login_ +
                                 "@TARGET@<gateway>; targets you may reach as " + login_ + ": " +
                                 (allowed.empty() ? "none" : allowed));
  }
  if (jump_ && jump_->has_certificate) {  // the outer certificate bounds the inner login too
    has_certificate_ = true;
    certificate_principals_ = jump_->certificate_principals;
  }
  if (has_certificate_ && !certificate_principals_.empty() &&
      std::find(certificate_principals_.begin(), certificate_principals_.end(), login_) ==
          certificate_principals_.end()) {
    std::string allowed;
    for (auto& p : certificate_principals_) allowed += (allowed.empty() ? "" : ", ") + p;
    return deny("certificate_principal",
                "the certificate allows the logins " + allowed + ", not " + printable(login_, 64));
  }
  target_ = ctx.targets.find(requested_target);
  if (!target_)
    return deny("unknown_target", "the target " + printable(requested_target, 64) +
                                      " is not configured on this gateway");
  log_->set_target(target_->name, asciicast::Endpoint{target_->host, target_->port}, login_);
  decision_ = ctx.policy.evaluate(identity_, target_->name, login_);
  if (!decision_.allowed) {
    target_ = nullptr;
    // A key bound after a sign-in without a second factor would keep bringing that sign-in
    // back: the next connection signs in afresh, and can use one.
    if (decision_.mfa_missing) {
      if (!verified_key_.empty()) ctx.key_bindings.forget(verified_key_);
      if (!binding_key_.empty()) ctx.key_bindings.forget(binding_key_);
      // Through a ProxyJump the sign-in was the outer connection's: its keys' bindings too.
      if (jump_)
        for (const auto& key : jump_->proven_keys) ctx.key_bindings.forget(key);
    }
    return deny(decision_.mfa_missing     ? "mfa_required"
                : decision_.outside_hours ? "outside_hours"
                                          : "policy",
                identity_.describe() + " may not log in to " + requested_target + " as " + login_ +
                    ": " + decision_.reason);
  }
  if (auto locks = ctx.locks.get()) {
    if (const auto* lock = locks->match(identity_, target_->name)) {
      target_ = nullptr;
      return deny("locked", lock_message(*lock));
    }
  }
  session_started_ = true;
  json start{{"castgate",
              {{"rules", decision_.rules},
               {"port_forwarding", decision_.port_forwarding},
               {"binary_streams", decision_.full_binary_streams ? "full" : "summary"},
               {"config", ctx.rules_digest}}}};
  if (decision_.ends_at) {
    auto left =
        std::max(std::chrono::seconds(1),
                 *decision_.ends_at - std::chrono::floor<std::chrono::seconds>(clock().now()));
    deadline_ = clock().steady_now() + left;
    warn_at_ = *deadline_ - std::min(ctx.config.session_end_warning, left / 2);
    start["castgate"]["ends_at"] = rfc3339_micros(*decision_.ends_at);
  }
  log_->emit(EventKind{"session.start", "success", ""}, std::move(start));
  upstream_ = std::make_unique<Upstream>(worker_.loop(), *ctx.resolver, *target_, login_,
                                         ctx.known_hosts, *this, ctx.config.connect_timeout);
  upstream_->start();
}

ssh::Key Session::make_upstream_credential(const std::string& local_ip, std::string& description) {
  auto& ctx = worker_.context();
  auto st = ctx.static_keys.find(target_->name);
  if (st != ctx.static_keys.end()) {
    ssh_key copy = nullptr;
    // A static key is used as is; copy it so that the session owns its handle.
    char* b64 = nullptr;
    if (ssh_pki_export_privkey_base64(st->second.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK)
      return nullptr;
    ssh::CharPtr owner(b64);
    if (ssh_pki_import_privkey_base64(b64, nullptr, nullptr, nullptr, &copy) != SSH_OK)
      return nullptr;
    description = "static key";
    return ssh::Key(copy);
  }
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) return nullptr;
  ssh::Key key(raw);
  std::string blob = key_blob_of(key.get());
  auto now = clock().now();
  auto valid_before = now + (target_->certificate_validity ? *target_->certificate_validity
                                                           : ctx.config.certificate_validity);
  signer::CertificateOrder order;
  order.public_key_blob = blob;
  order.key_id = "castgate session=" + id_ + " identity=" + identity_.subject +
                 (identity_.email.empty() ? "" : " email=" + identity_.email);
  order.principal = login_;
  order.valid_after = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(now) - 60));
  order.valid_before = static_cast<uint64_t>(std::max<int64_t>(0, unix_seconds(valid_before)));
  if (decision_.pty) order.extensions |= signer::kPermitPty;
  if (decision_.port_forwarding) order.extensions |= signer::kPermitPortForwarding;
  order.source_address = local_ip;
  auto issued = ctx.signer->sign_certificate(order);
  if (issued.certificate.empty()) {
    log::warn("session " + id_ + ": no certificate: " + issued.error);
    return nullptr;
  }
  const std::string& cert = issued.certificate;
  ssh_key cert_key = nullptr;
  if (ssh_pki_import_cert_base64(base64_encode(cert).c_str(), SSH_KEYTYPE_ED25519_CERT01,
                                 &cert_key) != SSH_OK)
    return nullptr;
  ssh::Key cert_owner(cert_key);
  if (ssh_pki_copy_cert_to_privkey(cert_owner.get(), key.get()) != SSH_OK) return nullptr;
  description =
      "certificate serial " + std::to_string(issued.serial) + " for " + login_ + ", valid " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(valid_before - now).count()) +
      "s";
  log_->emit(EventKind{"credential.issued", "success", ""},
             json{{"castgate",
                   {{"certificate",
                     {{"serial", std::to_string(issued.serial)},
                      {"key_id", order.key_id},
                      {"principals", {login_}},
                      {"extensions", signer::extension_names(order.extensions)},
                      {"source_address", local_ip},
                      {"valid_before", rfc3339_micros(valid_before)}}}}}});
  return key;
}

void Session::on_upstream_ready() {
  log_->emit(EventKind{"upstream.connected", "success", ""},
             json{{"castgate",
                   {{"upstream",
                     {{"address", upstream_->address()},
                      {"host_key", upstream_->host_key_fingerprint()},
                      {"credential", upstream_->credential_description()}}}}}});
  for (auto& [id, pair] : pairs_) pair->open_upstream();
  step();
}

void Session::on_upstream_failed(const UpstreamFailure& failure) {
  refusal_ = failure.message;
  log_->emit(
      EventKind{"upstream.failed", "failure", failure.message},
      json{{"castgate",
            {{"upstream",
              {{"error", failure.code}, {"address", upstream_ ? upstream_->address() : ""}}}}}});
  for (auto& [id, pair] : pairs_) {
    if (pair->state() == ChannelPair::State::kWaitingForUpstream)
      pair->refuse(failure.message);
    else
      pair->terminate(failure.message, failure.code);
  }
  request_step();
}

void Session::handle_channel_open(ssh::Message m) {
  ssh_message msg = m.get();
  int subtype = ssh_message_subtype(msg);
  if (!authenticated_ || state_ != State::kAuthenticated) {
    ssh_message_reply_default(msg);
    return;
  }
  auto& ctx = worker_.context();
  if (static_cast<int>(pairs_.size() + tunnels_.size()) >= ctx.config.max_channels) {
    log_->emit(EventKind{"channel.open_failed", "failure", "too many channels on one connection"});
    ssh_message_reply_default(msg);
    return;
  }
  ChannelType type;
  if (subtype == SSH_CHANNEL_SESSION) {
    type = ChannelType::kSession;
    if (deferred_denial_) {
      log_->emit(EventKind{"policy.denied", "failure", refusal_}, std::move(*deferred_denial_));
      deferred_denial_.reset();
    }
  } else if (subtype == SSH_CHANNEL_DIRECT_TCPIP) {
    type = ChannelType::kDirectTcpip;
    const char* host = ssh_message_channel_request_open_destination(msg);
    // An SSH address of a configured target is never forwarded (its bytes could not be
    // recorded): castgate serves that SSH connection itself.
    if (const Target* jump_to = ctx.targets.find_ssh_address(
            host ? host : "", ssh_message_channel_request_open_destination_port(msg))) {
      if (jump_) {  // no jump from a jump: one level is all ProxyJump needs
        log_->emit(EventKind{"jump.denied", "failure",
                             "a ProxyJump inside a ProxyJump connection is not served"},
                   json{{"castgate", {{"jump", {{"target", jump_to->name}}}}}});
        ssh_message_reply_default(msg);
        return;
      }
      return open_jump(std::move(m), *jump_to);
    }
    if (!refusal_.empty() || !decision_.port_forwarding) {
      std::string why = deferred_denial_   ? "not the SSH address of a configured target"
                        : refusal_.empty() ? "port forwarding is not allowed by policy"
                                           : refusal_;
      log_->emit(EventKind{"port_forward.denied", "failure", why},
                 json{{"castgate",
                       {{"forward",
                         {{"type", "local"},
                          {"host", printable(host ? host : "", 255)},
                          {"port", ssh_message_channel_request_open_destination_port(msg)}}}}}});
      ssh_message_reply_default(msg);
      return;
    }
  } else {
    log_->emit(EventKind{"channel.open_failed", "failure",
                         "channel type not allowed (agent and X11 forwarding are refused)"});
    ssh_message_reply_default(msg);
    return;
  }
  int id = next_channel_id_++;
  auto pair = std::make_unique<ChannelPair>(*this, id, type, std::move(m));
  ChannelPair* p = pair.get();
  pairs_.emplace(id, std::move(pair));
  if (!refusal_.empty()) {
    p->refuse(refusal_);
  } else if (upstream_ && upstream_->state() == Upstream::State::kReady) {
    p->open_upstream();
  }
}

void Session::open_jump(ssh::Message m, const Target& target) {
  ssh_message msg = m.get();
  json where{{"castgate",
              {{"jump",
                {{"target", target.name},
                 {"host", printable(ssh_message_channel_request_open_destination(msg), 255)},
                 {"port", ssh_message_channel_request_open_destination_port(msg)}}}}}};
  auto refuse = [&](const std::string& why) {
    log_->emit(EventKind{"jump.denied", "failure", why}, std::move(where));
    ssh_message_reply_default(msg);
  };
  if (std::string why = recording_refusal(); !why.empty() && recording_enabled())
    return refuse(why);
  if (credential_expires_ && clock().now() >= *credential_expires_)
    return refuse("this connection's sign-in expired at " + rfc3339_micros(*credential_expires_) +
                  "; connect again");
  if (jumps_signing_in() >= kMaxJumpsSigningIn)
    return refuse("too many ProxyJump connections signing in at once on this connection");
  // A new session under the rules this connection signed in with is not one that went on.
  if (worker_.context().retired.load()) return refuse(kReloadedMessage);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    return refuse(std::string("cannot create the inner connection: ") + strerror(errno));
  JumpOrigin origin;
  origin.outer_session = id_;
  origin.identity = identity_;
  origin.proven_keys = proven_keys_;
  origin.has_certificate = has_certificate_;
  origin.certificate_principals = certificate_principals_;
  origin.target = target.name;
  origin.expires = credential_expires_;
  ListenSpec inner_listener = listener_;
  inner_listener.target = target.name;
  std::string inner = worker_.start_inner_session(sv[1], inner_listener, peer_, origin);
  int id = next_channel_id_++;
  auto tunnel = std::make_unique<JumpTunnel>(*this, worker_.loop(), id, std::move(m), sv[0], inner,
                                             target.name);
  where["castgate"]["jump"]["session"] = inner;
  log_->emit(EventKind{"jump.open", "success", ""}, std::move(where), id);
  last_jump_end_.reset();
  JumpTunnel* t = tunnel.get();
  auto it = tunnels_.emplace(id, std::move(tunnel)).first;
  if (!t->accept()) {
    end_jump(*t, "could not accept the client's channel");
    tunnels_.erase(it);
  }
}

size_t Session::jumps_signing_in() {
  size_t n = 0;
  for (const auto& [id, tunnel] : tunnels_) {
    Session* inner = worker_.find(tunnel->inner_session());
    if (!inner || inner->signing_in()) ++n;  // not started yet counts too
  }
  return n;
}

void Session::end_jump(JumpTunnel& tunnel, const std::string& reason) {
  bytes_to_user_ += tunnel.bytes_to_user();
  bytes_to_target_ += tunnel.bytes_to_target();
  log_->emit(
      EventKind{"jump.close", "", reason},
      json{{"castgate",
            {{"jump", {{"session", tunnel.inner_session()}}},
             {"bytes",
              {{"to_user", tunnel.bytes_to_user()}, {"to_target", tunnel.bytes_to_target()}}}}}},
      tunnel.id());
  tunnel.terminate();
}

void Session::handle_jump_auth(ssh::Message m) {
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
    return close("sign_in_expired", "");
  }
  if (subtype == SSH_AUTH_METHOD_NONE && origin.proven_keys.empty()) {
    // The outer connection signed in without a key (a device or workload sign-in): the channel
    // this connection travels in is the only binding there is, and the only one needed.
    return accept_identity(origin.identity, std::move(m), how);
  }
  if (subtype == SSH_AUTH_METHOD_PUBLICKEY) {
    std::string blob = key_blob_of(ssh::auth_pubkey(msg));
    if (!blob.empty() && std::find(origin.proven_keys.begin(), origin.proven_keys.end(), blob) !=
                             origin.proven_keys.end()) {
      std::string fp = ssh::fingerprint_sha256(blob);
      if (!key_proven(msg, ssh::auth_pubkey_state(msg), "jump", "key " + fp)) return;
      return accept_identity(origin.identity, std::move(m), how + ", key " + fp);
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

ChannelPair* Session::find_pair(ssh_channel downstream) {
  for (auto& [id, pair] : pairs_)
    if (pair->downstream() == downstream) return pair.get();
  return nullptr;
}

void Session::handle_channel_request(ssh::Message m) {
  ChannelPair* pair = find_pair(ssh_message_channel_request_channel(m.get()));
  if (!pair) {
    ssh_message_reply_default(m.get());
    return;
  }
  pair->on_downstream_request(std::move(m));
}

ssh_session Session::upstream_session() {
  return upstream_ && upstream_->state() == Upstream::State::kReady ? upstream_->session()
                                                                    : nullptr;
}

bool Session::recording_has_room() {
  if (!recording_enabled()) return true;
  return log_->has_room();
}

std::string Session::recording_refusal() {
  auto h = worker_.context().sink->health();
  if (h == asciicast::SinkHealth::kHealthy) return {};
  return "session recording is unavailable, so nothing can run now";
}

std::string Session::title() const {
  std::string who = identity_.name.empty() ? identity_.subject : identity_.name;
  return who + " on " + target_name_ + " as " + login_;
}

void Session::note_activity() {
  last_activity_ = clock().steady_now();
}

void Session::close(const std::string& reason, const std::string& user_message) {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  close_reason_ = reason;
  close_message_ = user_message;
  state_ = State::kClosing;
  closing_deadline_ = clock().steady_now() + kCloseGrace;
  for (auto& [id, pair] : pairs_) pair->terminate(user_message, reason);
  request_step();
}

void Session::tick(std::chrono::steady_clock::time_point now) {
  auto& cfg = worker_.context().config;
  if (authenticated_) fault_point("tick", identity_.subject);
  if (state_ == State::kClosing) {
    if (now >= closing_deadline_) finalize();
    return;
  }
  if (state_ == State::kClosed) return;
  auto preauth = jump_ ? std::min<std::chrono::seconds>(cfg.preauth_timeout, kJumpSignInTimeout)
                       : cfg.preauth_timeout;
  if (sign_in_ && sign_in_->in_progress() && worker_.context().oidc)
    preauth = std::max(
        preauth, worker_.context().oidc->config().device.longest_wait() + std::chrono::seconds(30));
  if (!authenticated_ && now - started_at_ > preauth) {
    close("preauth_timeout", "");
    return;
  }
  if (deadline_ && state_ == State::kAuthenticated) {
    check_session_length(now);
    if (state_ != State::kAuthenticated) return;
  }
  if (cfg.idle_timeout.count() > 0 && authenticated_ && now - last_activity_ > cfg.idle_timeout) {
    close("idle_timeout", "the session was idle for " + std::to_string(cfg.idle_timeout.count()) +
                              " seconds and was closed");
    return;
  }
  if (authenticated_ && !refusal_.empty() && pairs_.empty() && tunnels_.empty()) {
    // Refused, or a connection without a target between ProxyJump channels (a ControlMaster):
    // the latter may idle for --jump-idle-timeout after its last channel, until its sign-in ends.
    if (!last_jump_end_ && now - started_at_ > kRefusedLinger) return close("refused", "");
    if (last_jump_end_ && now - *last_jump_end_ > cfg.jump_idle_timeout)
      return close("idle_timeout", "no ProxyJump channel for " +
                                       std::to_string(cfg.jump_idle_timeout.count()) +
                                       " seconds; the connection was closed");
    if (last_jump_end_ && credential_expires_ && clock().now() >= *credential_expires_)
      return close("sign_in_expired", "the sign-in of this connection expired");
    if (worker_.context().retired.load()) return close("config_reloaded", kReloadedMessage);
  }
  auto health = worker_.context().sink->health();
  if (health != asciicast::SinkHealth::kHealthy && authenticated_ && recording_enabled()) {
    close("recording_unavailable", "session recording is unavailable, so the session was ended");
    return;
  }
  // Channels waiting for a peer's CLOSE also need time to pass.
  if (!pairs_.empty()) request_step();
}

void Session::check_session_length(std::chrono::steady_clock::time_point now) {
  if (now >= *deadline_)
    return close(decision_.ends_code, "this session ended: " + decision_.ends_because);
  if (warned_ || now < *warn_at_) return;
  warned_ = true;
  auto left = std::chrono::ceil<std::chrono::seconds>(*deadline_ - now);
  std::string message =
      "this session ends in " + duration_text(left) + ": " + decision_.ends_because;
  for (auto& [id, pair] : pairs_) pair->notice(message);
  log_->emit(EventKind{"session.warning", "", message},
             json{{"castgate", {{"ends_in_seconds", left.count()}}}});
}

void Session::finalize() {
  if (state_ == State::kClosed) return;
  if (sign_in_) sign_in_->connection_lost();
  // Channels that did not finish in time are ended now, each with its own end event.
  for (auto& [id, pair] : pairs_) {
    pair->terminate("", close_reason_.empty() ? "session closed" : close_reason_);
    pair->abandon(close_reason_.empty() ? "session closed" : close_reason_);
  }
  pairs_.clear();
  for (auto& [id, tunnel] : tunnels_)
    end_jump(*tunnel, close_reason_.empty() ? "session closed" : close_reason_);
  tunnels_.clear();
  state_ = State::kClosed;
  if (upstream_) upstream_->disconnect();
  unwatch();
  if (down_ && ssh_is_connected(down_.get())) {
    if (!close_message_.empty())
      ssh_session_set_disconnect_message(
          down_.get(), ("castgate: " + printable(close_message_, 1024, false)).c_str());
    ssh_disconnect(down_.get());
  }
  fd_ = -1;
  release_unauthenticated();
  auto duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock().steady_now() - started_at_);
  json f;
  f["event"]["duration"] = duration.count();
  f["castgate"]["end_reason"] = close_reason_.empty() ? "closed" : close_reason_;
  f["castgate"]["channels"] = next_channel_id_;
  log_->add_byte_counts(f, bytes_to_target_, bytes_to_user_);
  if (last_exit_status_) f["process"]["exit_code"] = *last_exit_status_;
  if (last_exit_signal_) f["castgate"]["exit_signal"] = *last_exit_signal_;
  if (session_started_) {
    f["network"] = {{"protocol", "ssh"}, {"transport", "tcp"}};
    log_->end(EventKind{"session.end", "", close_reason_}, std::move(f));
  } else {
    log_->end(EventKind{"connection.closed", "", close_reason_}, std::move(f));
  }
  worker_.session_finished(id_);
}

}  // namespace castgate

namespace castgate {

void Session::channel_finished(uint64_t bytes_to_user, uint64_t bytes_to_target,
                               std::optional<int> exit_status,
                               const std::optional<std::string>& exit_signal) {
  bytes_to_user_ += bytes_to_user;
  bytes_to_target_ += bytes_to_target;
  if (exit_status || exit_signal) {
    last_exit_status_ = exit_status;
    last_exit_signal_ = exit_signal;
  }
}

}  // namespace castgate
