#include "gateway/jump_tunnel.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace castgate {

namespace {
// Bytes read from the inner session's socket per batch (one SSH packet's worth and more).
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

JumpTunnel::JumpTunnel(ChannelHost& host, EventLoop& loop, int id, ssh::Message open_request,
                       UniqueFd fd, std::string inner_session, std::string target)
    : host_(host),
      loop_(loop),
      id_(id),
      open_request_(std::move(open_request)),
      fd_(std::move(fd)),
      inner_session_(std::move(inner_session)),
      target_(std::move(target)) {}

JumpTunnel::~JumpTunnel() {
  if (open_request_) ssh_message_reply_default(open_request_.get());
  // libssh keeps a freed channel until the peer's CLOSE: it must not call back into us then.
  if (down_) ssh_remove_channel_callbacks(down_.get(), &callbacks_);
  close_socket();
}

bool JumpTunnel::accept() {
  ssh_channel ch = ssh_message_channel_request_open_reply_accept(open_request_.get());
  open_request_.reset();
  if (!ch) {
    finish();
    return false;
  }
  down_.reset(ch);
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &JumpTunnel::on_data_cb;
  callbacks_.channel_eof_function = &JumpTunnel::on_eof_cb;
  callbacks_.channel_close_function = &JumpTunnel::on_close_cb;
  ssh_set_channel_callbacks(down_.get(), &callbacks_);
  update_interest();
  return true;
}

int JumpTunnel::on_data_cb(ssh_session, ssh_channel, void*, uint32_t len, int,
                           void* self) noexcept {
  // Consume nothing here: step() takes libssh's whole buffer once the socket took the last one.
  auto* t = static_cast<JumpTunnel*>(self);
  t->user_data_ = true;
  // Only noted here: the session closes from step(), not inside libssh's callback.
  if (len > t->host_.config().max_channel_buffer) t->over_limit_ = true;
  t->host_.request_step();
  return 0;
}

void JumpTunnel::on_eof_cb(ssh_session, ssh_channel, void* self) noexcept {
  auto* t = static_cast<JumpTunnel*>(self);
  t->user_eof_ = true;
  t->host_.request_step();
}

void JumpTunnel::on_close_cb(ssh_session, ssh_channel, void* self) noexcept {
  auto* t = static_cast<JumpTunnel*>(self);
  t->user_close_ = true;
  t->host_.request_step();
}

void JumpTunnel::on_fd_ready(int, uint32_t) {
  host_.request_step();
}

bool JumpTunnel::move_to_inner() {
  bool progress = false;
  if (to_inner_offset_ >= to_inner_.size() && user_data_ && down_ && !user_close_) {
    user_data_ = false;
    int avail = ssh_channel_poll(down_.get(), 0);
    if (avail > 0) {
      to_inner_.resize(static_cast<size_t>(avail));
      int n = ssh_channel_read_nonblocking(down_.get(), to_inner_.data(),
                                           static_cast<uint32_t>(avail), 0);
      to_inner_.resize(n > 0 ? static_cast<size_t>(n) : 0);
      to_inner_offset_ = 0;
      if (n > 0) {
        to_inner_total_ += static_cast<uint64_t>(n);
        host_.note_activity();
        progress = true;
      }
    }
  }
  if (to_inner_offset_ < to_inner_.size() && fd_) {
    ssize_t w = ::send(fd_.get(), to_inner_.data() + to_inner_offset_,
                       to_inner_.size() - to_inner_offset_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      to_inner_offset_ += static_cast<size_t>(w);
      progress = true;
    } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      inner_eof_ = true;  // the inner session is gone: nothing more reaches it
      to_inner_.clear();
      to_inner_offset_ = 0;
    }
  }
  if (to_inner_offset_ >= to_inner_.size()) {
    to_inner_.clear();
    to_inner_offset_ = 0;
  }
  return progress;
}

bool JumpTunnel::move_to_user() {
  bool progress = false;
  if (to_user_offset_ >= to_user_.size() && fd_ && !inner_eof_) {
    to_user_.resize(kReadChunk);
    ssize_t n = ::recv(fd_.get(), to_user_.data(), to_user_.size(), MSG_DONTWAIT);
    if (n > 0) {
      to_user_.resize(static_cast<size_t>(n));
      to_user_total_ += static_cast<uint64_t>(n);
      host_.note_activity();
      progress = true;
    } else {
      to_user_.clear();
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) inner_eof_ = true;
    }
    to_user_offset_ = 0;
  }
  if (to_user_offset_ < to_user_.size() && down_ && !user_close_ && !close_sent_to_user_) {
    size_t room =
        std::min<size_t>(ssh_channel_window_size(down_.get()), to_user_.size() - to_user_offset_);
    if (room > 0) {
      int w = ssh_channel_write(down_.get(), to_user_.data() + to_user_offset_,
                                static_cast<uint32_t>(room));
      if (w > 0) {
        to_user_offset_ += static_cast<size_t>(w);
        progress = true;
      } else if (w < 0) {
        to_user_offset_ = to_user_.size();  // the channel failed: drop what it would have got
      }
    }
  } else if (user_close_ || close_sent_to_user_) {
    to_user_offset_ = to_user_.size();
  }
  if (to_user_offset_ >= to_user_.size()) {
    to_user_.clear();
    to_user_offset_ = 0;
  }
  return progress;
}

void JumpTunnel::step() {
  if (finished_) return;
  if (over_limit_) {
    over_limit_ = false;
    host_.limit_exceeded("channel_buffer", "the client sent more than " +
                                               std::to_string(host_.config().max_channel_buffer) +
                                               " bytes past the window of a ProxyJump channel "
                                               "(--max-channel-buffer)");
    return;
  }
  // A bounded number of rounds per call: a busy tunnel must not starve the loop.
  for (int round = 0; round < 16; ++round) {
    bool progress = move_to_inner();
    progress = move_to_user() || progress;
    if (!progress) break;
    if (round == 15) host_.request_step();
  }
  // The user's side sent EOF: the inner session reads end of file once it has everything.
  if (user_eof_ && to_inner_.empty() && !shut_to_inner_ && fd_) {
    ::shutdown(fd_.get(), SHUT_WR);
    shut_to_inner_ = true;
  }
  // Either side is gone for good: the inner session's end reaches the user after everything it
  // sent (EOF, then CLOSE); the user's CLOSE closes the inner session's socket. libssh keeps a
  // freed channel until the peer's CLOSE arrives.
  if (user_close_ || !down_ || (inner_eof_ && to_user_.empty())) {
    if (down_ && !user_close_ && !user_eof_ && !eof_sent_to_user_) {
      ssh_channel_send_eof(down_.get());
      eof_sent_to_user_ = true;
    }
    if (down_ && !close_sent_to_user_) {
      ssh_channel_close(down_.get());
      close_sent_to_user_ = true;
    }
    finish();
    return;
  }
  update_interest();
}

void JumpTunnel::terminate() {
  if (finished_) return;
  if (down_ && !close_sent_to_user_ && !user_close_) {
    ssh_channel_close(down_.get());
    close_sent_to_user_ = true;
  }
  finish();
}

void JumpTunnel::close_socket() {
  if (!fd_) return;
  if (interest_ != 0) loop_.unwatch(fd_.get());
  interest_ = 0;
  fd_.reset();
}

void JumpTunnel::finish() {
  close_socket();
  finished_ = true;
}

void JumpTunnel::update_interest() {
  if (!fd_) return;
  uint32_t want = 0;
  // Read only when the last batch has reached the user's channel: the inner session then waits,
  // as its socket buffer fills, for the user's window.
  if (!inner_eof_ && to_user_.empty()) want |= EPOLLIN;
  if (!to_inner_.empty()) want |= EPOLLOUT;
  if (want == interest_) return;
  if (interest_ == 0) {
    loop_.watch(fd_.get(), want, this);
  } else if (want == 0) {
    loop_.unwatch(fd_.get());
  } else {
    loop_.modify(fd_.get(), want);
  }
  interest_ = want;
}

}  // namespace castgate
