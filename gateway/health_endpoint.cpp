#include "gateway/health_endpoint.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "gateway/resolver.h"

namespace castgate {
namespace {
constexpr size_t kMaxRequest = 4096;
constexpr auto kClientTimeout = std::chrono::milliseconds(2000);
}  // namespace

HealthEndpoint::HealthEndpoint(EventLoop& loop, const std::string& address, int port,
                               std::function<std::string()> status)
    : loop_(loop), status_(std::move(status)) {
  std::string error;
  auto addrs = resolve_now(address, port, true, error);
  if (addrs.empty()) throw std::runtime_error("--health-listen: " + error);
  listen_fd_ = socket(addrs[0].addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen_fd_ < 0 ||
      ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addrs[0].addr), addrs[0].len) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error(std::string("--health-listen: ") + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  loop_.watch(listen_fd_, EPOLLIN, this);
}

HealthEndpoint::~HealthEndpoint() {
  while (!clients_.empty()) drop(clients_.begin()->first);
  if (listen_fd_ >= 0) {
    loop_.unwatch(listen_fd_);
    ::close(listen_fd_);
  }
}

void HealthEndpoint::drop(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (it->second.timer) loop_.cancel_timer(it->second.timer);
  loop_.unwatch(fd);
  ::close(fd);
  clients_.erase(it);
}

void HealthEndpoint::accept_all() {
  for (int i = 0; i < 16; ++i) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (clients_.size() >= 64) {
      ::close(fd);
      continue;
    }
    Client c;
    c.timer = loop_.add_timer(kClientTimeout, [this, fd] {
      auto it = clients_.find(fd);
      if (it != clients_.end()) it->second.timer = 0;
      drop(fd);
    });
    clients_.emplace(fd, std::move(c));
    loop_.watch(fd, EPOLLIN, this);
  }
}

void HealthEndpoint::on_fd_ready(int fd, uint32_t) noexcept {
  if (fd == listen_fd_) return accept_all();
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n <= 0) return drop(fd);
  it->second.request.append(buf, static_cast<size_t>(n));
  const std::string& req = it->second.request;
  if (req.find("\r\n\r\n") == std::string::npos && req.size() < kMaxRequest) return;
  std::string reason = status_();
  std::string body = reason.empty() ? "ok\n" : reason + "\n";
  std::string head = reason.empty() ? "HTTP/1.0 200 OK" : "HTTP/1.0 503 Service Unavailable";
  std::string response =
      head + "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  ssize_t w = ::write(fd, response.data(), response.size());
  (void)w;
  drop(fd);
}

}  // namespace castgate
