// A ProxyJump channel served by castgate itself. `ssh -J gw ubuntu@db1.int` asks the gateway for a
// direct-tcpip channel to db1.int:22; a plain jump host would forward the encrypted bytes, which
// nobody could record. castgate instead joins the channel to one end of a socketpair whose other
// end is an inner Session of the same worker: the inner SSH connection ends at castgate (its host
// key), is signed in on the strength of the outer one, and is re-originated and recorded like a
// direct connection.
//
// The tunnel only moves bytes, with the same flow-control rules as a ChannelPair: at most one
// channel window is taken from libssh before the socket has accepted the previous batch, and a
// client that sends past the window ends the connection (--max-channel-buffer).
#pragma once

#include <libssh/callbacks.h>

#include <cstdint>
#include <string>

#include "common/unique_fd.h"
#include "gateway/channel_pair.h"
#include "gateway/event_loop.h"
#include "gateway/ssh_handles.h"

namespace castgate {

class JumpTunnel final : public FdHandler {
 public:
  // `fd` is this side of the socketpair (non-blocking).
  JumpTunnel(ChannelHost& host, EventLoop& loop, int id, ssh::Message open_request, UniqueFd fd,
             std::string inner_session, std::string target);
  ~JumpTunnel() override;
  JumpTunnel(const JumpTunnel&) = delete;
  JumpTunnel& operator=(const JumpTunnel&) = delete;

  // Accepts the client's channel open request; false if libssh could not (the tunnel is then
  // finished).
  bool accept();
  // Moves bytes both ways and passes EOF and CLOSE on; call after I/O on either side.
  void step();
  // Ends the tunnel now (session teardown): the inner connection sees its socket close.
  void terminate();
  bool finished() const { return finished_; }
  int id() const { return id_; }
  const std::string& inner_session() const { return inner_session_; }
  uint64_t bytes_to_user() const { return to_user_total_; }
  uint64_t bytes_to_target() const { return to_inner_total_; }

  void on_fd_ready(int fd, uint32_t events) override;

 private:
  bool move_to_inner();
  bool move_to_user();
  void close_socket();
  void update_interest();
  void finish();

  static int on_data_cb(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                        void* self) noexcept;
  static void on_eof_cb(ssh_session, ssh_channel, void* self) noexcept;
  static void on_close_cb(ssh_session, ssh_channel, void* self) noexcept;

  ChannelHost& host_;
  EventLoop& loop_;
  const int id_;
  ssh::Message open_request_;
  UniqueFd fd_;
  uint32_t interest_ = 0;
  const std::string inner_session_, target_;
  ssh::Channel down_;
  ssh_channel_callbacks_struct callbacks_{};
  bool user_data_ = false, user_eof_ = false, user_close_ = false;
  bool inner_eof_ = false;  // the inner session's socket reached end of file or failed
  bool eof_sent_to_user_ = false, close_sent_to_user_ = false, shut_to_inner_ = false;
  bool finished_ = false;
  bool over_limit_ = false;         // the client sent past the window (--max-channel-buffer)
  std::string to_inner_, to_user_;  // taken from one side, not yet accepted by the other
  size_t to_inner_offset_ = 0, to_user_offset_ = 0;
  uint64_t to_inner_total_ = 0, to_user_total_ = 0;
};

}  // namespace castgate
