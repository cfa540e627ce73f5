#include "gateway/channel_pair.h"

#include <algorithm>

#include "common/fault_injection.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/ssh_messages.h"

namespace castgate {

using asciicast::Ending;
using asciicast::EndReason;
using nlohmann::json;

std::string_view to_string(ChannelPair::State state) {
  switch (state) {
    case ChannelPair::State::kWaitingForUpstream:
      return "waiting";
    case ChannelPair::State::kOpeningUpstream:
      return "opening";
    case ChannelPair::State::kOpen:
      return "open";
    case ChannelPair::State::kRefusing:
      return "refusing";
    case ChannelPair::State::kClosing:
      return "closing";
    case ChannelPair::State::kFinished:
      return "finished";
  }
  return "?";
}

namespace {

std::string str_or_empty(const char* s) {
  return s ? s : "";
}

constexpr size_t kPumpBudget = 4u << 20;  // bytes per pair per step, then yield to others
constexpr auto kCloseWait = std::chrono::seconds(10);

}  // namespace

ChannelPair::ChannelPair(ChannelHost& host, int id, ChannelType type, ssh::Message open_request)
    : host_(host), id_(id), type_(type), open_request_(std::move(open_request)) {
  if (type_ == ChannelType::kDirectTcpip && open_request_) {
    forward_host_ = str_or_empty(ssh_message_channel_request_open_destination(open_request_.get()));
    forward_port_ = ssh_message_channel_request_open_destination_port(open_request_.get());
    forward_origin_ =
        str_or_empty(ssh_message_channel_request_open_originator(open_request_.get()));
    forward_origin_port_ = ssh_message_channel_request_open_originator_port(open_request_.get());
  }
}

ChannelPair::~ChannelPair() {
  if (open_request_) ssh_message_reply_default(open_request_.get());
  for (auto& r : requests_)
    if (r.msg) ssh_message_reply_default(r.msg.get());
  if (down_) ssh_remove_channel_callbacks(down_.get(), &down_callbacks_);
  if (up_) ssh_remove_channel_callbacks(up_.get(), &up_callbacks_);
}

void ChannelPair::open_upstream() {
  if (state_ != State::kWaitingForUpstream) return;
  ssh_session up = host_.upstream_session();
  if (!up) return fail_open("the target is not connected");
  up_.reset(ssh_channel_new(up));
  if (!up_) return fail_open("cannot create a channel to the target");
  // Before the open goes out: what the target sends with its confirmation (a service that
  // speaks first, its EOF, its CLOSE) comes in the same read, before the open returns.
  install_up_callbacks();
  state_ = State::kOpeningUpstream;
  step();
}

void ChannelPair::fail_open(const std::string& why) {
  if (open_request_) {
    ssh_message_reply_default(open_request_.get());
    open_request_.reset();
  }
  json f;
  f["castgate"]["channel_type"] = to_string(type_);
  if (type_ == ChannelType::kDirectTcpip)
    f["castgate"]["forward"] = {{"host", forward_host_}, {"port", forward_port_}};
  host_.log().emit(asciicast::EventKind{"channel.open_failed", "failure", why}, std::move(f), id_);
  state_ = State::kFinished;
}

void ChannelPair::accept_downstream() {
  ssh_channel ch = ssh_message_channel_request_open_reply_accept(open_request_.get());
  open_request_.reset();
  if (!ch) {
    ending_ = Ending{EndReason::kAcceptFailed, "could not accept the user's channel"};
    state_ = State::kClosing;
    closing_since_ = host_.clock().steady_now();
    return;
  }
  down_.reset(ch);
  install_down_callbacks();
  opened_at_ = host_.clock().steady_now();
}

void ChannelPair::install_down_callbacks() {
  down_callbacks_ = {};
  ssh_callbacks_init(&down_callbacks_);
  down_callbacks_.userdata = this;
  down_callbacks_.channel_eof_function = &ChannelPair::on_eof_cb;
  down_callbacks_.channel_close_function = &ChannelPair::on_close_cb;
  down_callbacks_.channel_signal_function = &ChannelPair::on_signal_cb;
  down_callbacks_.channel_data_function = &ChannelPair::on_data_cb;
  ssh_set_channel_callbacks(down_.get(), &down_callbacks_);
}

void ChannelPair::install_up_callbacks() {
  up_callbacks_ = {};
  ssh_callbacks_init(&up_callbacks_);
  up_callbacks_.userdata = this;
  up_callbacks_.channel_eof_function = &ChannelPair::on_eof_cb;
  up_callbacks_.channel_close_function = &ChannelPair::on_close_cb;
  up_callbacks_.channel_exit_status_function = &ChannelPair::on_exit_status_cb;
  up_callbacks_.channel_exit_signal_function = &ChannelPair::on_exit_signal_cb;
  up_callbacks_.channel_data_function = &ChannelPair::on_data_cb;
  ssh_set_channel_callbacks(up_.get(), &up_callbacks_);
}

int ChannelPair::on_data_cb(ssh_session, ssh_channel ch, void*, uint32_t len, int is_stderr,
                            void* self) noexcept {
  // Only note that there is something to relay; step() takes it (consuming nothing here keeps
  // the data, and the window, in libssh's hands until the other side can take it). `len` is all
  // that libssh holds for the stream: more than a window means the peer ignores flow control.
  auto* p = static_cast<ChannelPair*>(self);
  if (ch == p->down_.get()) p->buffered_[kToTarget][0] = true;
  if (ch == p->up_.get()) p->buffered_[kToUser][is_stderr ? 1 : 0] = true;
  if (len > p->host_.config().max_channel_buffer && p->limit_.empty()) {
    try {
      p->note_limit("channel_buffer",
                    std::string(ch == p->down_.get() ? "the client" : "the target") +
                        " sent more than " + std::to_string(p->host_.config().max_channel_buffer) +
                        " bytes past the channel window (--max-channel-buffer)");
    } catch (...) {
    }
  }
  p->host_.request_step();
  return 0;
}

void ChannelPair::on_eof_cb(ssh_session, ssh_channel ch, void* self) noexcept {
  auto* p = static_cast<ChannelPair*>(self);
  if (ch == p->down_.get()) p->user_eof_seen_ = true;
  if (ch == p->up_.get()) p->target_eof_seen_ = true;
  p->host_.request_step();
}

void ChannelPair::on_close_cb(ssh_session, ssh_channel ch, void* self) noexcept {
  auto* p = static_cast<ChannelPair*>(self);
  if (ch == p->down_.get() && !p->user_close_seen_) {
    p->user_close_seen_ = true;
    // Before the target ended its side: a client may close on the target's EOF (PuTTY does, and
    // OpenSSH's forwards once the local socket is done), then the target ended the channel.
    p->user_closed_first_ = !p->target_close_seen_ && !p->target_eof_seen_;
    p->user_close_at_ = p->host_.clock().steady_now();
  }
  if (ch == p->up_.get()) p->target_close_seen_ = true;
  p->host_.request_step();
}

void ChannelPair::on_exit_status_cb(ssh_session, ssh_channel, int status, void* self) noexcept {
  auto* p = static_cast<ChannelPair*>(self);
  p->exit_status_ = status;
  p->host_.request_step();
}

void ChannelPair::on_exit_signal_cb(ssh_session, ssh_channel, const char* sig, int core,
                                    const char* errmsg, const char*, void* self) noexcept {
  auto* p = static_cast<ChannelPair*>(self);
  try {
    p->exit_signal_ = str_or_empty(sig);
    p->exit_core_ = core != 0;
    p->exit_errmsg_ = str_or_empty(errmsg);
  } catch (...) {
  }
  p->host_.request_step();
}

void ChannelPair::on_signal_cb(ssh_session, ssh_channel, const char* sig, void* self) noexcept {
  auto* p = static_cast<ChannelPair*>(self);
  try {
    if (p->state_ == State::kOpen && sig)
      p->queue(PendingRequest{PendingRequest::Kind::kSignal, nullptr, sig, "", 0, 0});
  } catch (...) {
  }
  p->host_.request_step();
}

bool ChannelPair::queue(PendingRequest request) {
  if (static_cast<int>(requests_.size()) >= host_.config().max_pending_requests) {
    if (request.msg) ssh_message_reply_default(request.msg.get());
    note_limit("pending_requests", "more than " +
                                       std::to_string(host_.config().max_pending_requests) +
                                       " requests waiting on one channel (--max-pending-requests)");
    return false;
  }
  requests_.push_back(std::move(request));
  return true;
}

bool ChannelPair::terminal_size_ok(int cols, int rows) {
  long cells = static_cast<long>(std::max(cols, 1)) * std::max(rows, 1);
  if (cols >= 0 && rows >= 0 && cols <= 10000 && rows <= 10000 && host_.resize_terminal(id_, cells))
    return true;
  note_limit("terminal_cells", "a terminal of " + std::to_string(cols) + "x" +
                                   std::to_string(rows) +
                                   " is larger than allowed (--max-terminal-cells)");
  return false;
}

void ChannelPair::note_limit(const std::string& limit, const std::string& detail) {
  // Acted on in step(): this may run inside a libssh callback, where nothing is torn down.
  if (limit_.empty()) {
    limit_ = limit;
    limit_detail_ = detail;
  }
  host_.request_step();
}

void ChannelPair::on_downstream_request(ssh::Message request) {
  ssh_message m = request.get();
  int subtype = ssh_message_subtype(m);
  using Kind = PendingRequest::Kind;
  auto deny = [&] { ssh_message_reply_default(m); };

  if (state_ == State::kRefusing) {
    switch (subtype) {
      case SSH_CHANNEL_REQUEST_SHELL:
      case SSH_CHANNEL_REQUEST_EXEC:
      case SSH_CHANNEL_REQUEST_SUBSYSTEM: {
        PendingRequest r{Kind::kShell, std::move(request), "", "", 0, 0};
        run_refusal(r);
        return;
      }
      case SSH_CHANNEL_REQUEST_PTY:
        pty_ = true;
        ssh_message_channel_request_reply_success(m);
        return;
      case SSH_CHANNEL_REQUEST_ENV:
      case SSH_CHANNEL_REQUEST_WINDOW_CHANGE:
        ssh_message_channel_request_reply_success(m);
        return;
      default:
        return deny();
    }
  }
  if (state_ != State::kOpen || type_ != ChannelType::kSession) return deny();

  switch (subtype) {
    case SSH_CHANNEL_REQUEST_PTY: {
      if (!host_.decision().pty || program_started_) {
        host_.log().emit(asciicast::EventKind{"channel.request_denied", "failure",
                                              "terminal (pty) not allowed by policy"},
                         json{{"castgate", {{"request", "pty-req"}}}}, id_);
        return deny();
      }
      auto p = ssh::pty_request(m);
      if (!terminal_size_ok(p.cols, p.rows)) return deny();
      pty_ = true;
      term_ = p.term;
      cols_ = p.cols;
      rows_ = p.rows;
      if (!queue(PendingRequest{Kind::kPty, std::move(request), p.term, "", p.cols, p.rows}))
        return;
      break;
    }
    case SSH_CHANNEL_REQUEST_ENV: {
      std::string name = str_or_empty(ssh_message_channel_request_env_name(m));
      std::string value = str_or_empty(ssh_message_channel_request_env_value(m));
      const auto& cfg = host_.config();
      if (++env_requests_ > cfg.max_env || name.size() + value.size() > cfg.max_env_size) {
        deny();
        return note_limit("env", "more than " + std::to_string(cfg.max_env) +
                                     " environment requests, or one larger than " +
                                     std::to_string(cfg.max_env_size) +
                                     " bytes (--max-env, --max-env-size)");
      }
      const Target* t = host_.target();
      if (!t || !t->env_allowed(name) || program_started_) return deny();
      if (name == "TERM" && term_.empty()) term_ = value;
      if (!queue(PendingRequest{Kind::kEnv, std::move(request), name, value, 0, 0})) return;
      break;
    }
    case SSH_CHANNEL_REQUEST_SHELL:
    case SSH_CHANNEL_REQUEST_EXEC:
    case SSH_CHANNEL_REQUEST_SUBSYSTEM: {
      if (program_started_) return deny();
      program_started_ = true;
      PendingRequest r{Kind::kShell, std::move(request), "", "", 0, 0};
      if (subtype == SSH_CHANNEL_REQUEST_EXEC) {
        r.kind = Kind::kExec;
        r.a = str_or_empty(ssh_message_channel_request_command(m));
      } else if (subtype == SSH_CHANNEL_REQUEST_SUBSYSTEM) {
        r.kind = Kind::kSubsystem;
        r.a = str_or_empty(ssh_message_channel_request_subsystem(m));
      }
      if (!queue(std::move(r))) return;
      break;
    }
    case SSH_CHANNEL_REQUEST_WINDOW_CHANGE: {
      auto p = ssh::pty_request(m);
      if (!pty_) return;  // no terminal: nothing to resize
      if (!terminal_size_ok(p.cols, p.rows)) return;
      cols_ = p.cols;
      rows_ = p.rows;
      if (recording_) recording_->resize(p.cols, p.rows);
      queue(PendingRequest{Kind::kWindowChange, nullptr, "", "", p.cols, p.rows});
      break;
    }
    case SSH_CHANNEL_REQUEST_X11:
      host_.log().emit(asciicast::EventKind{"channel.request_denied", "failure",
                                            "X11 forwarding is not allowed"},
                       json{{"castgate", {{"request", "x11-req"}}}}, id_);
      return deny();
    default:
      return deny();
  }
  step();
}

bool ChannelPair::start_recording(const PendingRequest& r) {
  fault_point("exec", r.a);
  std::string refusal = host_.recording_refusal();
  if (!refusal.empty()) {
    notice(refusal);
    return false;
  }
  asciicast::ChannelHeader h;
  h.pty = pty_;
  h.width = cols_;
  h.height = rows_;
  h.term = term_;
  h.title = host_.title();
  h.summarize_binary = !host_.decision().full_binary_streams;
  switch (r.kind) {
    case PendingRequest::Kind::kShell:
      h.kind = asciicast::ChannelKind::kShell;
      break;
    case PendingRequest::Kind::kExec:
      h.kind = asciicast::ChannelKind::kExec;
      h.command = program_ = r.a;
      break;
    default:
      h.kind = asciicast::ChannelKind::kSubsystem;
      h.command = program_ = r.a;
      break;
  }
  program_kind_ = h.kind;
  recording_ = std::make_unique<asciicast::ChannelRecording>(
      host_.log(), id_, host_.clock(), host_.alert_rules(), host_.recording_enabled());
  recording_->start(h);
  return true;
}

void ChannelPair::advance_requests() {
  ssh_channel up = up_.get();
  while (!requests_.empty() && up) {
    auto& r = requests_.front();
    using Kind = PendingRequest::Kind;
    if (!request_in_flight_ &&
        (r.kind == Kind::kShell || r.kind == Kind::kExec || r.kind == Kind::kSubsystem) &&
        !start_recording(r)) {
      ssh_message_reply_default(r.msg.get());
      requests_.pop_front();
      ending_ = Ending{EndReason::kRecordingUnavailable, "recording unavailable"};
      terminate("", *ending_);
      return;
    }
    int rc = SSH_ERROR;
    switch (r.kind) {
      case Kind::kPty:
        rc = ssh_channel_request_pty_size(up, r.a.c_str(), r.cols, r.rows);
        break;
      case Kind::kEnv:
        rc = ssh_channel_request_env(up, r.a.c_str(), r.b.c_str());
        break;
      case Kind::kShell:
        rc = ssh_channel_request_shell(up);
        break;
      case Kind::kExec:
        rc = ssh_channel_request_exec(up, r.a.c_str());
        break;
      case Kind::kSubsystem:
        rc = ssh_channel_request_subsystem(up, r.a.c_str());
        break;
      case Kind::kWindowChange:
        rc = ssh_channel_change_pty_size(up, r.cols, r.rows);
        break;
      case Kind::kSignal:
        rc = ssh_channel_request_send_signal(up, r.a.c_str());
        break;
    }
    if (rc == SSH_AGAIN) {
      request_in_flight_ = true;
      return;
    }
    request_in_flight_ = false;
    if (r.msg) {
      if (rc == SSH_OK)
        ssh_message_channel_request_reply_success(r.msg.get());
      else
        ssh_message_reply_default(r.msg.get());
    }
    if (rc != SSH_OK &&
        (r.kind == Kind::kShell || r.kind == Kind::kExec || r.kind == Kind::kSubsystem)) {
      host_.log().emit(
          asciicast::EventKind{"channel.request_denied", "failure",
                               "the target refused the request"},
          json{{"castgate", {{"request", program_kind_ ? to_string(*program_kind_) : ""}}}}, id_);
    }
    requests_.pop_front();
  }
}

void ChannelPair::record(Direction dir, bool is_stderr, std::string_view data) {
  if (!recording_) return;
  if (dir == kToTarget) fault_point("input", data);
  if (dir == kToUser)
    recording_->from_target(data, is_stderr);
  else
    recording_->from_user(data);
}

bool ChannelPair::move(Direction dir, bool is_stderr, size_t& budget) {
  ssh_channel from = dir == kToUser ? up_.get() : down_.get();
  ssh_channel to = dir == kToUser ? down_.get() : up_.get();
  bool from_closed = dir == kToUser ? close_sent_to_target_ : close_sent_to_user_;
  bool to_open =
      to &&
      (dir == kToUser ? !(eof_sent_to_user_ || close_sent_to_user_ || user_close_seen_)
                      : !(eof_sent_to_target_ || close_sent_to_target_ || target_close_seen_));
  InFlight& f = in_flight_[dir][is_stderr];
  bool progress = false;
  // Take everything libssh holds for this stream, and only once the previous batch is passed
  // on: libssh re-opens the sender's window on every read, whatever it still buffers, so
  // reading part of its buffer would let the sender push without bound. This way at most one
  // window is held here and one in libssh.
  bool& pending = buffered_[dir][is_stderr];
  if (f.empty() && pending && from && !from_closed && budget > 0 && host_.recording_has_room()) {
    pending = false;  // the whole buffer is taken below
    int avail = ssh_channel_poll(from, is_stderr ? 1 : 0);
    if (avail > 0) {
      f.fill(static_cast<size_t>(avail));
      int n = ssh_channel_read_nonblocking(from, f.data.get(), static_cast<uint32_t>(avail),
                                           is_stderr ? 1 : 0);
      if (n > 0) {
        f.len = static_cast<size_t>(n);
        budget -= std::min(budget, f.len);
        (dir == kToUser ? bytes_to_user_ : bytes_to_target_) += f.len;
        host_.note_activity();
        record(dir, is_stderr, std::string_view(f.data.get(), f.len));
        progress = true;
      } else {
        f.release();
      }
    }
  }
  if (f.empty()) return progress;
  if (!to_open) {  // the receiver is gone: what it would have got is dropped
    f.release();
    return true;
  }
  size_t room = std::min<size_t>(ssh_channel_window_size(to), f.len - f.offset);
  if (room == 0) return progress;
  const char* p = f.data.get() + f.offset;
  int w = is_stderr ? ssh_channel_write_stderr(to, p, static_cast<uint32_t>(room))
                    : ssh_channel_write(to, p, static_cast<uint32_t>(room));
  if (w < 0) {
    f.release();
    return progress;
  }
  f.offset += static_cast<size_t>(w);
  if (f.offset >= f.len) f.release();
  return progress || w > 0;
}

void ChannelPair::pump() {
  size_t budget = kPumpBudget;
  bool progress = true;
  while (progress && budget > 0) {
    progress = false;
    if (move(kToUser, false, budget)) progress = true;
    if (move(kToUser, true, budget)) progress = true;
    if (move(kToTarget, false, budget)) progress = true;
  }
  if (budget == 0) host_.request_step();
}

bool ChannelPair::target_drained() {
  if (!up_) return true;
  if (!in_flight_[kToUser][0].empty() || !in_flight_[kToUser][1].empty()) return false;
  if (close_sent_to_target_) return true;
  return !buffered_[kToUser][0] && !buffered_[kToUser][1];
}

bool ChannelPair::user_input_drained() {
  if (!down_) return true;
  if (!in_flight_[kToTarget][0].empty()) return false;
  if (close_sent_to_user_) return true;
  return !buffered_[kToTarget][0];
}

void ChannelPair::forward_exit(ssh_channel down) {
  if (exit_forwarded_) return;
  if (exit_signal_)
    ssh_channel_request_send_exit_signal(down, exit_signal_->c_str(), exit_core_ ? 1 : 0,
                                         exit_errmsg_.c_str(), "");
  else if (exit_status_)
    ssh_channel_request_send_exit_status(down, *exit_status_);
  else
    return;
  exit_forwarded_ = true;
}

void ChannelPair::propagate_close() {
  ssh_channel down = down_.get();
  ssh_channel up = up_.get();
  bool target_done = (target_eof_seen_ || target_close_seen_) && target_drained();
  if (down && !close_sent_to_user_ && !user_close_seen_) {
    if ((exit_status_ || exit_signal_) && target_drained()) forward_exit(down);
    if (target_done && !eof_sent_to_user_) {
      ssh_channel_send_eof(down);
      eof_sent_to_user_ = true;
    }
    if (target_done && target_close_seen_) {
      ssh_channel_close(down);
      close_sent_to_user_ = true;
    }
  }
  bool user_done = (user_eof_seen_ || user_close_seen_) && user_input_drained();
  if (up && !close_sent_to_target_ && !target_close_seen_) {
    if (user_done && !eof_sent_to_target_ && !user_close_seen_) {
      ssh_channel_send_eof(up);
      eof_sent_to_target_ = true;
    }
    if (user_close_seen_) {
      ssh_channel_close(up);
      close_sent_to_target_ = true;
    }
  }
  // Answer a peer's CLOSE with ours. A client may close as soon as it has our EOF (PuTTY does),
  // while the target's exit status is still on its way (it comes with or before the target's
  // CLOSE): wait for it, briefly, and send it first, so the user's client learns how the
  // command ended.
  if (user_close_seen_ && down && !close_sent_to_user_) {
    bool status_coming = !exit_forwarded_ && !exit_status_ && !exit_signal_ && up &&
                         !target_close_seen_ && state_ != State::kFinished &&
                         host_.clock().steady_now() - user_close_at_ < kExitStatusWait;
    if (!status_coming) {
      forward_exit(down);
      exit_forwarded_ = true;  // none came: none is sent later
      ssh_channel_close(down);
      close_sent_to_user_ = true;
    }
  }
  if (target_close_seen_ && up && !close_sent_to_target_ && target_drained()) {
    ssh_channel_close(up);
    close_sent_to_target_ = true;
  }
  if (state_ == State::kOpen && (close_sent_to_user_ || close_sent_to_target_)) {
    state_ = State::kClosing;
    closing_since_ = host_.clock().steady_now();
  }
  auto alive = [](ssh_channel ch) {
    ssh_session s = ssh_channel_get_session(ch);
    return s && ssh_is_connected(s);
  };
  bool down_done = !down || (close_sent_to_user_ && (user_close_seen_ || !alive(down)));
  bool up_done = !up || (close_sent_to_target_ && (target_close_seen_ || !alive(up)));
  if (down_done && up_done) {
    finish(ending_ ? *ending_ : closed_by_peer());
  } else if (state_ == State::kClosing &&
             host_.clock().steady_now() - closing_since_ > kCloseWait) {
    finish(ending_ ? *ending_
                   : Ending{EndReason::kCloseUnconfirmed, "peer did not confirm the close"});
  }
}

Ending ChannelPair::closed_by_peer() const {
  if ((target_close_seen_ || target_eof_seen_) && !user_closed_first_)
    return Ending{EndReason::kTargetClosed, "target closed the channel"};
  return Ending{EndReason::kUserClosed, "user closed the channel"};
}

void ChannelPair::run_refusal(const PendingRequest& r) {
  if (r.msg) ssh_message_channel_request_reply_success(r.msg.get());
  ssh_channel down = down_.get();
  if (!down) return;
  ssh_channel_request_send_exit_status(down, 1);
  ssh_channel_send_eof(down);
  eof_sent_to_user_ = true;
  ssh_channel_close(down);
  close_sent_to_user_ = true;
  exit_status_ = 1;
  state_ = State::kClosing;
  closing_since_ = host_.clock().steady_now();
}

void ChannelPair::refuse(std::string message) {
  if (state_ != State::kWaitingForUpstream || !open_request_) return;
  if (type_ != ChannelType::kSession) return fail_open(message);
  accept_downstream();
  if (!down_) return;
  state_ = State::kRefusing;
  ending_ = Ending{EndReason::kRefused, ""};
  // Shown before the shell/exec request is answered, so that it appears above everything else.
  // Messages quote what the user sent (logins, target names): harmless to their terminal.
  std::string text = "castgate: " + printable(message, 4096, false) + "\r\n";
  ssh_channel_write_stderr(down_.get(), text.data(), static_cast<uint32_t>(text.size()));
}

void ChannelPair::notice(const std::string& message) {
  if (message.empty() || !down_ || eof_sent_to_user_ || close_sent_to_user_ || user_close_seen_)
    return;
  std::string safe = printable(message, 4096, false);
  std::string text = pty_ ? "\r\ncastgate: " + safe + "\r\n" : "castgate: " + safe + "\n";
  if (pty_) {
    ssh_channel_write(down_.get(), text.data(), static_cast<uint32_t>(text.size()));
  } else {
    ssh_channel_write_stderr(down_.get(), text.data(), static_cast<uint32_t>(text.size()));
  }
  if (recording_) recording_->notice(text, !pty_);
}

void ChannelPair::terminate(const std::string& message, const Ending& ending) {
  if (state_ == State::kFinished) return;
  // A peer's CLOSE came first: that is why the channel ends, even if its session ends before the
  // close is complete (OpenSSH hangs up as soon as it has answered the target's CLOSE).
  if (!ending_ && (target_close_seen_ || user_close_seen_)) ending_ = closed_by_peer();
  if (!ending_ || ending_->code == EndReason::kRefused) ending_ = ending;
  if (state_ == State::kWaitingForUpstream || state_ == State::kOpeningUpstream) {
    if (open_request_) {
      if (type_ == ChannelType::kSession) {
        accept_downstream();
      } else {
        ssh_message_reply_default(open_request_.get());
        open_request_.reset();
      }
    }
  }
  notice(message);
  if (down_ && !close_sent_to_user_) {
    if (!exit_forwarded_ && !exit_status_ && !exit_signal_)
      ssh_channel_request_send_exit_status(down_.get(), 255);
    exit_forwarded_ = true;
    ssh_channel_close(down_.get());
    close_sent_to_user_ = true;
  }
  if (up_ && !close_sent_to_target_) {
    ssh_channel_close(up_.get());
    close_sent_to_target_ = true;
  }
  if (state_ != State::kClosing) {
    state_ = State::kClosing;
    closing_since_ = host_.clock().steady_now();
  }
  step();
}

void ChannelPair::finish(const Ending& ending) {
  if (state_ == State::kFinished) return;
  state_ = State::kFinished;
  host_.resize_terminal(id_, 0);
  if (recording_) recording_->finish();
  json f;
  f["castgate"]["end_reason"] = to_string(ending.code);
  host_.log().add_byte_counts(f, bytes_to_target_, bytes_to_user_);
  if (opened_at_ != std::chrono::steady_clock::time_point{})
    f["event"]["duration"] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 host_.clock().steady_now() - opened_at_)
                                 .count();
  host_.channel_finished(bytes_to_user_, bytes_to_target_, exit_status_, exit_signal_);
  if (type_ == ChannelType::kDirectTcpip) {
    f["castgate"]["forward"] = {{"host", forward_host_},
                                {"port", forward_port_},
                                {"originator", forward_origin_},
                                {"originator_port", forward_origin_port_}};
    host_.log().emit(asciicast::EventKind{"port_forward.close", "", std::string(ending.reason())},
                     std::move(f), id_);
    return;
  }
  if (program_kind_) f["castgate"]["channel_kind"] = to_string(*program_kind_);
  if (exit_status_) f["process"]["exit_code"] = *exit_status_;
  if (exit_signal_) f["castgate"]["exit_signal"] = *exit_signal_;
  host_.log().emit(asciicast::EventKind{"channel.end", "", std::string(ending.reason())},
                   std::move(f), id_);
}

void ChannelPair::emit_open_event() {
  if (type_ != ChannelType::kDirectTcpip) return;
  json f;
  f["castgate"]["forward"] = {{"host", forward_host_},
                              {"port", forward_port_},
                              {"originator", forward_origin_},
                              {"originator_port", forward_origin_port_}};
  host_.log().emit(asciicast::EventKind{"port_forward.open", "success", ""}, std::move(f), id_);
}

void ChannelPair::step() {
  if (!limit_.empty() && !limit_reported_) {
    limit_reported_ = true;
    return host_.limit_exceeded(limit_, limit_detail_);
  }
  if (state_ == State::kOpeningUpstream) {
    int rc = type_ == ChannelType::kSession
                 ? ssh_channel_open_session(up_.get())
                 : ssh_channel_open_forward(up_.get(), forward_host_.c_str(), forward_port_,
                                            forward_origin_.c_str(), forward_origin_port_);
    if (rc == SSH_AGAIN) return;
    if (rc != SSH_OK) {
      ssh_session up = host_.upstream_session();
      return fail_open(std::string("the target refused the channel: ") +
                       (up ? ssh_get_error(up) : "not connected"));
    }
    accept_downstream();
    if (state_ != State::kOpeningUpstream) return;
    state_ = State::kOpen;
    emit_open_event();
  }
  if (state_ == State::kOpen) advance_requests();
  if (state_ == State::kOpen || state_ == State::kClosing || state_ == State::kRefusing) {
    // No byte passes before the recording exists: session channels wait for their program.
    if (recording_ || type_ == ChannelType::kDirectTcpip || state_ != State::kOpen) pump();
    propagate_close();
  }
}

}  // namespace castgate
