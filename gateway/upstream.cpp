#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/encoding.h"
#include "common/log.h"
#include "gateway/ssh_wire.h"

namespace castgate {

Upstream::Upstream(EventLoop& loop, Handle self, Resolver& resolver, const Target& target,
                   std::string login, const KnownHosts& known_hosts, Owner& owner,
                   std::chrono::seconds connect_timeout)
    : loop_(loop),
      self_(std::move(self)),
      resolver_(resolver),
      target_(target),
      login_(std::move(login)),
      known_hosts_(known_hosts),
      owner_(owner),
      connect_timeout_(connect_timeout) {}

Upstream::~Upstream() {
  unwatch();
  if (timeout_timer_) self_.cancel(timeout_timer_);
  fd_.reset();
  // The event must let go of the session before either is freed.
  if (event_ && session_) ssh_event_remove_session(event_.get(), session_.get());
  event_.reset();
  credential_.reset();
  session_.reset();  // closes the socket if libssh still holds it
}

void Upstream::unwatch() {
  if (watched_fd_ >= 0) {
    loop_.unwatch(watched_fd_);
    watched_fd_ = -1;
  }
}

void Upstream::start() {
  state_ = State::kResolving;
  timeout_timer_ = self_.after(
      std::chrono::duration_cast<std::chrono::milliseconds>(connect_timeout_), [](Upstream& u) {
        u.timeout_timer_ = 0;
        if (u.state_ != State::kReady && u.state_ != State::kFailed)
          u.fail("target_timeout", "the target " + u.target_.name +
                                       " did not complete the connection within " +
                                       std::to_string(u.connect_timeout_.count()) + " seconds");
      });
  resolver_.resolve(target_.host, target_.port, loop_, [self = self_](ResolveResult addrs) {
    self.defer(
        [addrs = std::move(addrs)](Upstream& u) mutable { u.on_resolved(std::move(addrs)); });
  });
}

void Upstream::on_resolved(ResolveResult addresses) {
  if (state_ != State::kResolving) return;
  if (!addresses) {
    fail("target_unresolvable", "cannot resolve " + target_.host + " (target " + target_.name +
                                    "): " + addresses.error().detail);
    return;
  }
  addresses_ = std::move(addresses).value();
  state_ = State::kConnecting;
  connect_next();
}

void Upstream::connect_next() {
  while (next_address_ < addresses_.size()) {
    const auto& a = addresses_[next_address_++];
    address_text_ = a.text + ":" + std::to_string(target_.port);
    fd_.reset(socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) {
      last_connect_error_ = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0 ||
        errno == EINPROGRESS) {
      watched_fd_ = fd_.get();
      interest_ = EPOLLOUT;
      loop_.watch(fd_.get(), interest_, this);
      return;
    }
    last_connect_error_ = std::strerror(errno);
    fd_.reset();
  }
  fail("target_unreachable",
       "cannot connect to " + target_.name + " (" + address_text_ + "): " + last_connect_error_);
}

void Upstream::on_tcp_connected() {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    last_connect_error_ = std::strerror(err);
    unwatch();
    fd_.reset();
    connect_next();
    return;
  }
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&local), &llen);
  char ip[INET6_ADDRSTRLEN] = {};
  if (local.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, ip, sizeof ip);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, ip, sizeof ip);

  credential_ = owner_.make_upstream_credential(ip, credential_description_);
  if (!credential_) {
    fail("credential_failed", "castgate could not create a credential for " + target_.name);
    return;
  }
  session_.reset(ssh_new());
  if (!session_) {
    fail("internal", "out of memory");
    return;
  }
  ssh_session s = session_.get();
  int off = 0, verbosity = SSH_LOG_NOLOG;
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &off);  // never read ~/.ssh or /etc/ssh
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(s, SSH_OPTIONS_HOST, target_.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_USER, login_.c_str());
  auto types = known_hosts_.key_types_for(target_.known_hosts_names());
  if (!types.empty()) {
    std::string list;
    for (auto& t : types) list += (list.empty() ? "" : ",") + t;
    ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, list.c_str());
  }
  socket_t fd = fd_.release();  // libssh owns the descriptor from here on
  ssh_options_set(s, SSH_OPTIONS_FD, &fd);
  watched_fd_ = fd;  // still watched
  ssh_set_blocking(s, 0);
  state_ = State::kHandshake;
  int rc = ssh_connect(s);
  if (rc == SSH_ERROR) {
    fail("handshake_failed", "SSH handshake with " + target_.name + " failed: " + ssh_get_error(s));
    return;
  }
  event_.reset(ssh_event_new());
  if (!event_ || ssh_event_add_session(event_.get(), s) != SSH_OK) {
    fail("internal", "cannot set up the event loop for " + target_.name);
    return;
  }
  step();
}

bool Upstream::check_host_key() {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session_.get(), &raw) != SSH_OK || !raw) {
    fail("host_key_missing", "the target " + target_.name + " sent no host key");
    return false;
  }
  ssh::Key key(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK || !b64) {
    fail("host_key_unreadable", "cannot read the host key of " + target_.name);
    return false;
  }
  ssh::CharPtr b64_owner(b64);
  auto blob = base64_decode(b64);
  if (!blob) {
    fail("host_key_unreadable", "cannot read the host key of " + target_.name);
    return false;
  }
  host_key_fingerprint_ = ssh::fingerprint_sha256(*blob);
  auto result = known_hosts_.check(target_.known_hosts_names(), *blob);
  switch (result) {
    case HostKeyCheck::kMatch:
      return true;
    case HostKeyCheck::kMismatch:
      fail("host_key_mismatch",
           "the host key of " + target_.name + " (" + std::string(ssh::blob_key_type(*blob)) + " " +
               host_key_fingerprint_ +
               ") does not match the key pinned for it; this could be an attack or a "
               "reinstalled server. The session was refused; ask your administrator to check it.");
      return false;
    case HostKeyCheck::kRevoked:
      fail("host_key_revoked", "the host key of " + target_.name + " (" + host_key_fingerprint_ +
                                   ") is revoked; the session was refused.");
      return false;
    case HostKeyCheck::kUnknown:
      break;
  }
  fail("host_key_unknown", "no host key is pinned for " + target_.name + " (it offered " +
                               host_key_fingerprint_ +
                               "); castgate does not trust keys on first use. Ask your "
                               "administrator to add it to the known hosts file.");
  return false;
}

void Upstream::step() {
  ssh_session s = session_.get();
  if (state_ == State::kHandshake) {
    int rc = ssh_connect(s);
    if (rc == SSH_AGAIN) return update_interest();
    if (rc != SSH_OK) {
      fail("handshake_failed", "SSH handshake with " + target_.name + " (" + address_text_ +
                                   ") failed: " + ssh_get_error(s));
      return;
    }
    if (!check_host_key()) return;
    state_ = State::kAuthenticating;
  }
  if (state_ == State::kAuthenticating) {
    int rc = ssh_userauth_publickey(s, nullptr, credential_.get());
    if (rc == SSH_AUTH_AGAIN) return update_interest();
    if (rc != SSH_AUTH_SUCCESS) {
      fail("upstream_auth_rejected",
           "the target " + target_.name + " refused castgate's credential for login " + login_ +
               " (" + credential_description_ +
               "); check that it trusts the castgate user CA and that the login exists");
      return;
    }
    state_ = State::kReady;
    if (timeout_timer_) {
      self_.cancel(timeout_timer_);
      timeout_timer_ = 0;
    }
    update_interest();
    owner_.on_upstream_ready();
    return;
  }
  if (state_ == State::kReady) {
    owner_.on_upstream_io();
    update_interest();
  }
}

void Upstream::update_interest() {
  if (watched_fd_ < 0 || !session_) return;
  uint32_t want = EPOLLIN;
  if (ssh_get_poll_flags(session_.get()) & SSH_WRITE_PENDING) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    loop_.modify(watched_fd_, want);
  }
}

void Upstream::on_fd_ready(int, uint32_t events) {
  if (state_ == State::kConnecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_tcp_connected();
    return;
  }
  if (!event_ || state_ == State::kFailed) return;
  // Errors surface through step() (handshake) or the channels (ready). libssh reads 4 KiB per
  // poll; take a few rounds before relaying.
  for (int i = 0; i < 8 && ssh_event_dopoll(event_.get(), 0) == SSH_OK; ++i) {
  }
  step();
}

void Upstream::on_fault(const char* what) noexcept {
  owner_.on_upstream_fault(what);
}

void Upstream::fail(std::string code, std::string message) {
  if (state_ == State::kFailed) return;
  state_ = State::kFailed;
  if (timeout_timer_) {
    self_.cancel(timeout_timer_);
    timeout_timer_ = 0;
  }
  unwatch();
  owner_.on_upstream_failed(UpstreamFailure{std::move(code), std::move(message)});
}

void Upstream::disconnect() {
  unwatch();
  if (!session_ || !ssh_is_connected(session_.get())) return;
  // libssh 0.10's ssh_disconnect forgets a socket it was given with SSH_OPTIONS_FD without
  // closing it (ssh_free would have): close it here, or every session leaves a socket to its
  // target in CLOSE_WAIT until the worker runs out of descriptors.
  UniqueFd forgotten(ssh_get_fd(session_.get()));
  ssh_disconnect(session_.get());
  if (ssh_get_fd(session_.get()) == forgotten.get()) forgotten.release();  // libssh kept it
}

}  // namespace castgate
