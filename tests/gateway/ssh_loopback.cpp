#include "tests/gateway/ssh_loopback.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace castgate::testing {

namespace {

constexpr auto kLoopbackConnectTimeout = std::chrono::seconds(10);

ssh::Key generate_loopback_host_key() {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || !raw)
    throw std::runtime_error("cannot generate a host key");
  return ssh::Key(raw);
}

}  // namespace

SshLoopback::SshLoopback() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair failed");
  int off = 0, verbosity = SSH_LOG_NOLOG;

  bind_.reset(ssh_bind_new());
  server_.reset(ssh_new());
  client_.reset(ssh_new());
  if (!bind_ || !server_ || !client_) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::runtime_error("out of memory");
  }
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_PROCESS_CONFIG, &off);
  ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity);
  // The bind takes the key over.
  if (ssh_bind_options_set(bind_.get(), SSH_BIND_OPTIONS_IMPORT_KEY,
                           generate_loopback_host_key().release()) != SSH_OK) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::runtime_error("libssh refused the host key");
  }
  if (ssh_bind_accept_fd(bind_.get(), server_.get(), sv[0]) != SSH_OK) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::runtime_error("ssh_bind_accept_fd failed");
  }
  ssh_set_blocking(server_.get(), 0);
  ssh_set_auth_methods(server_.get(), SSH_AUTH_METHOD_NONE);

  ssh_session c = client_.get();
  ssh_options_set(c, SSH_OPTIONS_PROCESS_CONFIG, &off);  // never read ~/.ssh or /etc/ssh
  ssh_options_set(c, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(c, SSH_OPTIONS_HOST, "loopback");
  ssh_options_set(c, SSH_OPTIONS_USER, "tester");
  socket_t fd = sv[1];
  ssh_options_set(c, SSH_OPTIONS_FD, &fd);  // the client session owns it from here on
  ssh_set_blocking(c, 0);

  // Key exchange, both ends in turn.
  int server_rc = SSH_AGAIN, client_rc = SSH_AGAIN;
  auto deadline = std::chrono::steady_clock::now() + kLoopbackConnectTimeout;
  while (server_rc == SSH_AGAIN || client_rc == SSH_AGAIN) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the loopback key exchange did not finish");
    if (server_rc == SSH_AGAIN) server_rc = ssh_handle_key_exchange(server_.get());
    if (client_rc == SSH_AGAIN) client_rc = ssh_connect(c);
    if (server_rc == SSH_ERROR || client_rc == SSH_ERROR)
      throw std::runtime_error(std::string("loopback key exchange failed: ") +
                               ssh_get_error(server_rc == SSH_ERROR ? server_.get() : c));
  }
  server_event_.reset(ssh_event_new());
  client_event_.reset(ssh_event_new());
  if (!server_event_ || !client_event_ ||
      ssh_event_add_session(server_event_.get(), server_.get()) != SSH_OK ||
      ssh_event_add_session(client_event_.get(), c) != SSH_OK)
    throw std::runtime_error("cannot set up the loopback events");

  // Sign in: the server accepts "none".
  int auth = SSH_AUTH_AGAIN;
  while (auth == SSH_AUTH_AGAIN) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the loopback sign-in did not finish");
    auth = ssh_userauth_none(c, nullptr);
    poll();
    for (auto& m : take_server_messages()) {
      if (ssh_message_type(m.get()) == SSH_REQUEST_AUTH)
        ssh_message_auth_reply_success(m.get(), 0);
      else
        ssh_message_reply_default(m.get());
    }
  }
  if (auth != SSH_AUTH_SUCCESS)
    throw std::runtime_error(std::string("loopback sign-in failed: ") + ssh_get_error(c));
}

void SshLoopback::poll() {
  for (int i = 0; i < 4; ++i) {
    ssh_event_dopoll(server_event_.get(), 0);
    ssh_event_dopoll(client_event_.get(), 0);
  }
}

std::vector<ssh::Message> SshLoopback::take_server_messages() {
  std::vector<ssh::Message> out;
  while (ssh_message m = ssh_message_get(server_.get())) out.emplace_back(m);
  return out;
}

PeerChannel::PeerChannel(ssh::Channel channel) : channel_(std::move(channel)) {
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &PeerChannel::on_data;
  callbacks_.channel_eof_function = &PeerChannel::on_eof;
  callbacks_.channel_close_function = &PeerChannel::on_close;
  callbacks_.channel_exit_status_function = &PeerChannel::on_exit_status;
  callbacks_.channel_exit_signal_function = &PeerChannel::on_exit_signal;
  ssh_set_channel_callbacks(channel_.get(), &callbacks_);
}

PeerChannel::~PeerChannel() {
  if (channel_) ssh_remove_channel_callbacks(channel_.get(), &callbacks_);
}

void PeerChannel::write(const std::string& data) {
  REQUIRE(ssh_channel_write(channel_.get(), data.data(), static_cast<uint32_t>(data.size())) ==
          static_cast<int>(data.size()));
}

void PeerChannel::write_stderr(const std::string& data) {
  REQUIRE(
      ssh_channel_write_stderr(channel_.get(), data.data(), static_cast<uint32_t>(data.size())) ==
      static_cast<int>(data.size()));
}

void PeerChannel::close() {
  if (close_sent) return;
  close_sent = true;
  REQUIRE(ssh_channel_close(channel_.get()) == SSH_OK);
}

void PeerChannel::note(std::string_view what) noexcept {
  try {
    order.append(what).append("|");
  } catch (...) {  // out of memory: the test's checks of `order` fail
  }
}

int PeerChannel::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                         void* self) noexcept {
  auto* p = static_cast<PeerChannel*>(self);
  std::string_view bytes(static_cast<const char*>(data), len);
  try {
    (is_stderr ? p->err : p->out) += bytes;
  } catch (...) {
    return 0;  // left in libssh's buffer
  }
  p->note(std::string(is_stderr ? "err:" : "out:") + std::string(bytes));
  return static_cast<int>(len);
}

void PeerChannel::on_eof(ssh_session, ssh_channel, void* self) noexcept {
  auto* p = static_cast<PeerChannel*>(self);
  p->eof = true;
  p->note("eof");
}

void PeerChannel::on_close(ssh_session, ssh_channel, void* self) noexcept {
  auto* p = static_cast<PeerChannel*>(self);
  p->closed = true;
  p->note("close");
}

void PeerChannel::on_exit_status(ssh_session, ssh_channel, int status, void* self) noexcept {
  auto* p = static_cast<PeerChannel*>(self);
  p->exit_status = status;
  p->note("exit-status " + std::to_string(status));
}

void PeerChannel::on_exit_signal(ssh_session, ssh_channel, const char* sig, int, const char*,
                                 const char*, void* self) noexcept {
  auto* p = static_cast<PeerChannel*>(self);
  try {
    p->exit_signal = sig ? sig : "";
  } catch (...) {
  }
  p->note("exit-signal " + std::string(sig ? sig : ""));
}

bool pump_until(const std::function<void()>& step, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL_CHECK("timed out waiting for the peers");
      return false;
    }
    step();
  }
  return true;
}

}  // namespace castgate::testing
