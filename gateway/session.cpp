#include "gateway/session.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cassert>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/fault_injection.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/upstream_credential.h"

namespace castgate {

using asciicast::Ending;
using asciicast::EndReason;
using asciicast::EventKind;
using nlohmann::json;

namespace {

constexpr auto kCloseGrace = std::chrono::seconds(3);
constexpr auto kRefusedLinger = std::chrono::seconds(30);
// The inner connection of a ProxyJump signs in without a person or a provider in the loop.
constexpr auto kJumpSignInTimeout = std::chrono::seconds(20);

}  // namespace

Session::Session(SessionHost& host, GatewayContext& context, std::string id, int fd,
                 ListenSpec listener, asciicast::Endpoint peer, std::optional<JumpOrigin> jump)
    : host_(host),
      context_(context),
      id_(std::move(id)),
      listener_(std::move(listener)),
      peer_(std::move(peer)),
      counted_unauthenticated_(!jump),  // the outer connection was the one counted
      jump_(std::move(jump)),
      socket_(fd) {
  sign_in_ = std::make_unique<Authenticator>(
      context_, *this, InteractiveSignIn::Handle{ref(), &enter_sign_in}, listener_.target,
      peer_.address, jump_ ? &*jump_ : nullptr);
  jumps_ = std::make_unique<JumpChannels>(*this, host_, context_.retired);
  auto& ctx = context_;
  asciicast::SessionLogOptions opts;
  opts.instance = ctx.config.instance;
  opts.max_line = ctx.config.max_line;
  opts.signing_key = ctx.signer.get();
  opts.ledger = ctx.checkpoints;
  opts.searchable_text = ctx.config.searchable_text;
  opts.observer = ctx.event_observer;
  auto backlog =
      std::make_shared<asciicast::Backlog>(ctx.config.session_backlog, host_.make_waker(id_));
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
  jumps_.reset();
  upstream_.reset();
  if (down_event_ && down_) ssh_event_remove_session(down_event_.get(), down_.get());
  down_event_.reset();
  down_.reset();
}

void Session::unwatch() {
  if (fd_ >= 0 && interest_ != 0) host_.loop().unwatch(fd_);
  interest_ = 0;
}

void Session::release_unauthenticated() {
  if (counted_unauthenticated_) {
    counted_unauthenticated_ = false;
    context_.startup_done(peer_.address);
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
    if (state_ != State::kClosed) {
      close(Ending{EndReason::kInternalError, ""}, "");
      // The fault is why it ends, whatever began the close before; and it ends now, not on a
      // later step.
      ending_ = Ending{EndReason::kInternalError, ""};
      close_message_ = "castgate hit an internal error and closed this session";
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
    std::string code(to_string(EndReason::kInternalError));
    log_->end(EventKind{"session.end", "", code}, json{{"castgate", {{"end_reason", code}}}});
  } catch (...) {
  }
  try {
    host_.session_finished(id_);
  } catch (...) {
  }
}

const Clock& Session::clock() const {
  return *context_.clock;
}
bool Session::recording_enabled() const {
  return context_.config.recording_enabled;
}

const asciicast::AlertRules* Session::alert_rules() const {
  return &context_.alerts;
}

void Session::start() {
  auto& ctx = context_;
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
    socket_.reset();
    close(EndReason::kGatewayFull, "");
    return;
  }
  down_.reset(ssh_new());
  if (!down_ || !hand_socket_to_libssh()) {
    log::warn("session " + id_ + ": cannot set up the SSH server session");
    socket_.reset();  // still ours: libssh did not take it
    close(EndReason::kInternalError, "");
    return;
  }
  ssh_session s = down_.get();
  ssh_set_blocking(s, 0);
  int methods = SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_INTERACTIVE;
  if (context_.oidc && context_.oidc->workloads_enabled()) methods |= SSH_AUTH_METHOD_PASSWORD;
  if (jump_) methods = SSH_AUTH_METHOD_PUBLICKEY;
  ssh_set_auth_methods(s, methods);
  if (ssh_handle_key_exchange(s) == SSH_ERROR) {
    close(EndReason::kHandshakeFailed, "");
    return;
  }
  down_event_.reset(ssh_event_new());
  if (!down_event_ || ssh_event_add_session(down_event_.get(), s) != SSH_OK) {
    close(EndReason::kInternalError, "");
    return;
  }
  interest_ = EPOLLIN;
  host_.loop().watch(fd_, interest_, this);
  (void)ctx;
  step();
}

bool Session::hand_socket_to_libssh() {
  int fd = socket_.get();
  int rc = ssh_bind_accept_fd(host_.bind(), down_.get(), fd);
  // libssh (0.10.6) owns the descriptor once it is its session's socket, whether or not the
  // call then succeeds (ssh_free() closes it); a failure before that (its configuration, out of
  // memory) leaves it ours.
  if (rc == SSH_OK || ssh_get_fd(down_.get()) == fd) socket_.release();
  if (rc != SSH_OK) return false;
  fd_ = fd;
  return true;
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
  ref().defer([](Session& s) {
    s.step_scheduled_ = false;
    s.step();
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
    if (rc != SSH_OK) return close(EndReason::kHandshakeFailed, "");
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
    close(broken ? Ending{EndReason::kProtocolError, ""}
                 : Ending{EndReason::kUserDisconnected, "user disconnected"},
          "");
  }
  if (upstream_ && upstream_->state() == Upstream::State::kReady &&
      (!ssh_is_connected(upstream_->session()) ||
       (ssh_get_status(upstream_->session()) & SSH_CLOSED_ERROR)) &&
      state_ == State::kAuthenticated) {
    close(EndReason::kTargetDisconnected, "the connection to " + target_name_ + " was lost");
  }
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    it->second->step();
    if (it->second->finished()) {
      it = pairs_.erase(it);
    } else {
      ++it;
    }
  }
  jumps_->step();
  if (state_ == State::kClosing) jumps_->close_all(std::string(ending_.reason()));
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
    host_.loop().modify(fd_, want);
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
  close(EndReason::kLimitExceeded, detail + "; the connection was closed");
  // No grace for a peer past a limit: one that ignores the window may ignore our CLOSE too, and
  // libssh buffers whatever it goes on sending until the socket is closed.
  closing_deadline_ = clock().steady_now();
}

const GatewayConfig& Session::config() const {
  return context_.config;
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
      return sign_in_->handle(std::move(m));
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

void Session::enter_sign_in(Session& s, const InteractiveSignIn::Handle::Task& fn) {
  InteractiveSignIn* sign_in = s.sign_in_->interactive();
  if (!sign_in || s.state_ != State::kAuthenticating) return;
  fn(*sign_in);
  // What the sign-in sent may wait for the socket to be writable (libssh writes one packet, then
  // buffers until POLLOUT): watch for it, as after input from the client.
  s.request_step();
}

void Session::enter_upstream(Session& s, const Upstream::Handle::Task& fn) {
  if (s.upstream_) fn(*s.upstream_);
}

void Session::accept_identity(const Identity& identity, ssh::Message m, const std::string& detail) {
  std::string ssh_user = sign_in_->requested_user();
  identity_ = identity;
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
  if (!authenticated()) return close(EndReason::kConfigReloaded, GatewayContext::kRetiredMessage);
  if (!refusal_.empty() && pairs_.empty() && jumps_->empty())
    return close(EndReason::kConfigReloaded, GatewayContext::kRetiredMessage);
}

void Session::enforce_locks(const Locks& locks) {
  if (!authenticated() || state_ == State::kClosing || state_ == State::kClosed) return;
  const auto* lock = locks.match(identity_, target_ ? target_->name : target_name_);
  if (lock) close(EndReason::kLocked, lock_message(*lock));
}

void Session::authorize(const std::string& ssh_user) {
  Router router(context_.targets, context_.policy, context_.locks);
  Route route = router.route(ssh_user, listener_.target, identity_,
                             sign_in_->has_certificate() ? sign_in_->certificate_principals()
                                                         : std::vector<std::string>{});
  login_ = route.login;
  target_name_ = route.target_name;
  if (route.target)
    log_->set_target(route.target->name,
                     asciicast::Endpoint{route.target->host, route.target->port}, login_);
  decision_ = route.decision;
  if (route.denial) {
    if (!decision_.allowed && decision_.mfa_missing) sign_in_->forget_key_bindings();
    return deny(*route.denial);
  }
  target_ = route.target;
  connect_upstream();
}

void Session::deny(const RouteDenial& denial) {
  refusal_ = denial.message;
  json fields{{"castgate",
               {{"denial", denial.code},
                {"requested_target", printable(denial.requested_target, 128)},
                {"requested_login", printable(login_, 64)}}}};
  // No target named: the connection may be a ProxyJump's, which opens only direct-tcpip
  // channels; the denial is recorded if it asks for a shell or command.
  if (denial.code == "no_target")
    deferred_denial_ = std::move(fields);
  else
    log_->emit(EventKind{"policy.denied", "failure", denial.message}, std::move(fields));
}

void Session::connect_upstream() {
  auto& ctx = context_;
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
  upstream_ = std::make_unique<Upstream>(host_.loop(), Upstream::Handle{ref(), &enter_upstream},
                                         *ctx.resolver, *target_, login_, ctx.known_hosts, *this,
                                         ctx.config.connect_timeout);
  upstream_->start();
}

ssh::Key Session::make_upstream_credential(const std::string& local_ip, std::string& description) {
  auto& ctx = context_;
  auto credential = mint_upstream_credential(
      UpstreamCredentialSources{ctx.static_keys, *ctx.signer, ctx.config.certificate_validity,
                                clock()},
      UpstreamCredentialRequest{id_, identity_, login_, *target_, decision_, local_ip});
  if (!credential) return nullptr;  // the upstream refuses: credential_failed
  description = std::move(credential->description);
  if (credential->issued)
    log_->emit(EventKind{"credential.issued", "success", ""}, std::move(*credential->issued));
  return std::move(credential->key);
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
      pair->terminate(failure.message, Ending{EndReason::kUpstreamFailed, failure.code});
  }
  request_step();
}

void Session::handle_channel_open(ssh::Message m) {
  ssh_message msg = m.get();
  int subtype = ssh_message_subtype(msg);
  if (!authenticated() || state_ != State::kAuthenticated) {
    ssh_message_reply_default(msg);
    return;
  }
  auto& ctx = context_;
  if (static_cast<int>(pairs_.size() + jumps_->size()) >= ctx.config.max_channels) {
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
      if (jumps_->open(std::move(m), *jump_to, jump_outer(), next_channel_id_)) ++next_channel_id_;
      return;
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

JumpChannels::Outer Session::jump_outer() const {
  JumpChannels::Outer outer{listener_, peer_, {}};
  outer.sign_in.outer_session = id_;
  outer.sign_in.identity = identity_;
  outer.sign_in.proven_keys = sign_in_->proven_keys();
  outer.sign_in.has_certificate = sign_in_->has_certificate();
  outer.sign_in.certificate_principals = sign_in_->certificate_principals();
  outer.sign_in.expires = sign_in_->credential_expires();
  return outer;
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
  auto h = context_.sink->health();
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

void Session::close(Ending ending, const std::string& user_message) {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  ending_ = std::move(ending);
  close_message_ = user_message;
  state_ = State::kClosing;
  closing_deadline_ = clock().steady_now() + kCloseGrace;
  for (auto& [id, pair] : pairs_) pair->terminate(user_message, ending_);
  request_step();
}

void Session::tick(std::chrono::steady_clock::time_point now) {
  auto& cfg = context_.config;
  if (authenticated()) fault_point("tick", identity_.subject);
  if (state_ == State::kClosing) {
    if (now >= closing_deadline_) finalize();
    return;
  }
  if (state_ == State::kClosed) return;
  auto preauth = jump_ ? std::min<std::chrono::seconds>(cfg.preauth_timeout, kJumpSignInTimeout)
                       : cfg.preauth_timeout;
  if (sign_in_->interactive_in_progress() && context_.oidc)
    preauth =
        std::max(preauth, context_.oidc->config().device.longest_wait() + std::chrono::seconds(30));
  if (!authenticated() && now - started_at_ > preauth) {
    close(EndReason::kPreauthTimeout, "");
    return;
  }
  if (deadline_ && state_ == State::kAuthenticated) {
    check_session_length(now);
    if (state_ != State::kAuthenticated) return;
  }
  if (cfg.idle_timeout.count() > 0 && authenticated() && now - last_activity_ > cfg.idle_timeout) {
    close(EndReason::kIdleTimeout, "the session was idle for " +
                                       std::to_string(cfg.idle_timeout.count()) +
                                       " seconds and was closed");
    return;
  }
  if (authenticated() && !refusal_.empty() && pairs_.empty() && jumps_->empty()) {
    // Refused, or a connection without a target between ProxyJump channels (a ControlMaster):
    // the latter may idle for --jump-idle-timeout after its last channel, until its sign-in ends.
    if (!jumps_->idle_since() && now - started_at_ > kRefusedLinger)
      return close(EndReason::kRefused, "");
    if (auto end = jumps_->idle_end(now, sign_in_->credential_expires()))
      return close(end->reason, end->message);
    if (context_.retired.load())
      return close(EndReason::kConfigReloaded, GatewayContext::kRetiredMessage);
  }
  auto health = context_.sink->health();
  if (health != asciicast::SinkHealth::kHealthy && authenticated() && recording_enabled()) {
    close(EndReason::kRecordingUnavailable,
          "session recording is unavailable, so the session was ended");
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
  // The one teardown: only ever after close(), which recorded why (ending_).
  assert(state_ == State::kClosing);
  if (sign_in_) sign_in_->connection_lost();
  // Channels that did not finish in time are ended now, each with its own end event.
  for (auto& [id, pair] : pairs_) {
    pair->terminate("", ending_);
    pair->abandon(ending_);
  }
  pairs_.clear();
  jumps_->close_all(std::string(ending_.reason()));
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
  f["castgate"]["end_reason"] = to_string(ending_.code);
  f["castgate"]["channels"] = next_channel_id_;
  log_->add_byte_counts(f, bytes_to_target_, bytes_to_user_);
  if (last_exit_status_) f["process"]["exit_code"] = *last_exit_status_;
  if (last_exit_signal_) f["castgate"]["exit_signal"] = *last_exit_signal_;
  if (session_started_) {
    f["network"] = {{"protocol", "ssh"}, {"transport", "tcp"}};
    log_->end(EventKind{"session.end", "", std::string(ending_.reason())}, std::move(f));
  } else {
    log_->end(EventKind{"connection.closed", "", std::string(ending_.reason())}, std::move(f));
  }
  host_.session_finished(id_);
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
