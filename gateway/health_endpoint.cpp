#include "gateway/health_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "gateway/resolver.h"

namespace castgate {
namespace {
constexpr int kListenBacklog = 1024;
// Accepts per loop pass: enough to drain a flood quickly, few enough that SSH sessions on the same
// loop get their turn.
constexpr int kAcceptsPerPass = 64;
}  // namespace

HealthRoute route_health_request(std::string_view request) {
  std::string_view line = request.substr(0, request.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || line.substr(0, sp) != "GET") return HealthRoute::kBadMethod;
  std::string_view target = line.substr(sp + 1);
  target = target.substr(0, target.find(' '));
  target = target.substr(0, target.find('?'));
  if (target == "/readyz" || target == "/healthz") return HealthRoute::kReady;
  if (target == "/livez") return HealthRoute::kLive;
  if (target == "/metrics") return HealthRoute::kMetrics;
  return HealthRoute::kNotFound;
}

HealthEndpoint::HealthEndpoint(EventLoop& loop, const std::string& address, int port,
                               std::function<std::string(HealthRoute)> status,
                               std::function<std::string()> metrics)
    : loop_(loop), status_(std::move(status)), metrics_(std::move(metrics)) {
  auto resolved = resolve_now(address, port, true);
  if (!resolved) throw std::runtime_error("--health-listen: " + resolved.error().detail);
  const std::vector<ResolvedAddress>& addrs = *resolved;
  listen_fd_.reset(socket(addrs[0].addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int fd = listen_fd_.get();
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&addrs[0].addr), addrs[0].len) != 0 ||
      ::listen(fd, kListenBacklog) != 0) {
    std::string why = std::strerror(errno);
    throw std::runtime_error("--health-listen: " + why);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  loop_.watch(fd, EPOLLIN, this);
}

HealthEndpoint::~HealthEndpoint() {
  while (!clients_.empty()) drop(clients_.begin()->first);
  if (listen_fd_) loop_.unwatch(listen_fd_.get());
}

void HealthEndpoint::drop(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (it->second.timer) loop_.cancel_timer(it->second.timer);
  oldest_first_.erase(it->second.age);
  auto src = per_source_.find(it->second.source);
  if (src != per_source_.end() && --src->second == 0) per_source_.erase(src);
  loop_.unwatch(fd);
  clients_.erase(it);  // closes it
}

int HealthEndpoint::eviction_victim() const {
  const std::string* busiest = nullptr;
  size_t most = 0;
  for (const auto& [source, n] : per_source_) {
    if (n > most) {
      most = n;
      busiest = &source;
    }
  }
  for (int fd : oldest_first_)
    if (!busiest || clients_.at(fd).source == *busiest) return fd;
  return oldest_first_.front();
}

void HealthEndpoint::accept_some() {
  for (int i = 0; i < kAcceptsPerPass; ++i) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd = accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&peer), &plen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    // At the cap the oldest of the busiest source is closed, not the newcomer: holders cannot
    // lock probes out.
    if (clients_.size() >= kMaxClients) drop(eviction_victim());
    Client c;
    c.fd.reset(fd);
    char ip[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, ip, sizeof ip);
    else if (peer.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, ip, sizeof ip);
    c.source = ip;
    ++per_source_[c.source];
    c.age = oldest_first_.insert(oldest_first_.end(), fd);
    c.timer = loop_.add_timer(kClientTimeout, [this, fd] {
      auto it = clients_.find(fd);
      if (it != clients_.end()) it->second.timer = 0;
      drop(fd);
    });
    clients_.emplace(fd, std::move(c));
    loop_.watch(fd, EPOLLIN, this);
    read_request(fd);  // a probe that waited in the accept queue has sent its request already
  }
}

void HealthEndpoint::on_fd_ready(int fd, uint32_t) noexcept {
  if (fd == listen_fd_.get()) return accept_some();
  read_request(fd);
}

void HealthEndpoint::read_request(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  std::string& req = it->second.request;
  char buf[1024];
  ssize_t n = ::read(fd, buf, std::min(sizeof buf, kMaxRequest - req.size()));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) return drop(fd);
  req.append(buf, static_cast<size_t>(n));
  if (req.find("\r\n\r\n") == std::string::npos && req.size() < kMaxRequest) return;
  answer(fd);
}

void HealthEndpoint::answer(int fd) {
  HealthRoute route = route_health_request(clients_.at(fd).request);
  std::string head = "HTTP/1.0 200 OK";
  std::string body = "ok\n";
  std::string type = "text/plain";
  if (route == HealthRoute::kMetrics) {
    body = metrics_();
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (route == HealthRoute::kBadMethod) {
    head = "HTTP/1.0 405 Method Not Allowed";
    body = "only GET\n";
  } else if (route == HealthRoute::kNotFound) {
    head = "HTTP/1.0 404 Not Found";
    body = "probes: /readyz, /livez; metrics: /metrics\n";
  } else if (std::string reason = status_(route); !reason.empty()) {
    head = "HTTP/1.0 503 Service Unavailable";
    body = reason + "\n";
  }
  std::string response = head + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
  // A fresh socket's send buffer takes these few bytes (metrics: a few KiB) whole; a client that
  // does not read them loses its answer, never the loop's time.
  ssize_t w = ::write(fd, response.data(), response.size());
  (void)w;
  drop(fd);
}

}  // namespace castgate
