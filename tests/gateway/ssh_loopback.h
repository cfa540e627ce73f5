// libssh peers connected inside the test process, for unit tests of the code that relays SSH
// channels: a libssh client and a libssh server on the two ends of a socketpair, each
// non-blocking with its own ssh_event, and a peer's channel that keeps what it is sent. A test
// moves everything forward with bounded pumping: every wait gives up after a fixed time.
//
// A mock of libssh would test nothing of what matters here (windows, EOF and CLOSE order,
// exit-status), and OpenSSH peers need processes and seconds: the end-to-end tests use those.
#pragma once

#include <libssh/callbacks.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/ssh_handles.h"

namespace castgate::testing {

// One SSH connection: `client` signed in to `server` (auth "none", accepted by the server).
class SshLoopback {
 public:
  // Connects and signs in, pumping both ends; throws if that does not finish in time.
  SshLoopback();
  SshLoopback(const SshLoopback&) = delete;
  SshLoopback& operator=(const SshLoopback&) = delete;

  ssh_session client() const { return client_.get(); }
  ssh_session server() const { return server_.get(); }
  // Reads what both sockets hold and runs libssh's callbacks; never blocks.
  void poll();
  // The requests the server side received since the last call (channel opens, channel requests).
  std::vector<ssh::Message> take_server_messages();

 private:
  ssh::Bind bind_;
  ssh::Session server_;
  ssh::Session client_;
  ssh::Event server_event_;
  ssh::Event client_event_;
};

// A channel at one of the outer ends (the user's client, the target's server): everything it
// receives is kept, nothing is left in libssh's buffers, its window re-opens as it reads.
class PeerChannel {
 public:
  explicit PeerChannel(ssh::Channel channel);
  ~PeerChannel();
  PeerChannel(const PeerChannel&) = delete;
  PeerChannel& operator=(const PeerChannel&) = delete;

  ssh_channel get() const { return channel_.get(); }
  void write(const std::string& data);
  void write_stderr(const std::string& data);
  // Sends CLOSE, once.
  void close();

  std::string out, err;              // received on the channel's stdout and stderr streams
  bool eof = false, closed = false;  // received
  bool close_sent = false;
  std::optional<int> exit_status;
  std::optional<std::string> exit_signal;
  // What arrived, in order, for the half-close rules: "out:DATA|exit-status 0|eof|close|".
  std::string order;

 private:
  void note(std::string_view what) noexcept;
  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                     void* self) noexcept;
  static void on_eof(ssh_session, ssh_channel, void* self) noexcept;
  static void on_close(ssh_session, ssh_channel, void* self) noexcept;
  static void on_exit_status(ssh_session, ssh_channel, int status, void* self) noexcept;
  static void on_exit_signal(ssh_session, ssh_channel, const char* sig, int core,
                             const char* errmsg, const char* lang, void* self) noexcept;

  ssh_channel_callbacks_struct callbacks_{};
  ssh::Channel channel_;
};

// Calls `step` until `done` holds, or fails the test (a doctest CHECK) after `timeout`.
// Returns whether `done` held.
bool pump_until(const std::function<void()>& step, const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace castgate::testing
