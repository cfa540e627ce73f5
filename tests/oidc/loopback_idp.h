// An identity provider's HTTP endpoints on a loopback port, for the OidcService tests. A stand-in,
// not a real provider: these tests drive time with a manual clock and must decide each answer
// (authorization_pending, slow_down, a rotated key set) at a given moment, which the real
// provider of the end-to-end tests (tests/idp) cannot be told to do. One request per connection
// (the answer says Connection: close); each request is recorded with the clock's time.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/unique_fd.h"

namespace castgate::oidc_test {

struct IdpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::chrono::steady_clock::time_point at;  // the clock's steady time when it arrived
};

struct IdpAnswer {
  int status = 200;
  std::string body;
};

class LoopbackIdp {
 public:
  using Handler = std::function<IdpAnswer(const IdpRequest&)>;

  LoopbackIdp(const Clock& clock, Handler handler) : clock_(clock), handler_(std::move(handler)) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_.get(), 16);
    socklen_t len = sizeof a;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackIdp() {
    stopping_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);  // wakes accept()
    thread_.join();
  }
  LoopbackIdp(const LoopbackIdp&) = delete;
  LoopbackIdp& operator=(const LoopbackIdp&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The requests answered so far (each answer written and its connection closed).
  std::vector<IdpRequest> answered() {
    std::lock_guard lock(mu_);
    return answered_;
  }
  std::vector<IdpRequest> answered(const std::string& path) {
    std::vector<IdpRequest> out;
    for (auto& r : answered())
      if (r.path == path) out.push_back(r);
    return out;
  }
  // Waits (at most 10 s) until `count` requests to `path` have been answered.
  bool wait_for(const std::string& path, size_t count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      size_t n = 0;
      for (auto& r : answered_) n += r.path == path;
      return n >= count;
    });
  }

 private:
  void serve() {
    while (!stopping_) {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      std::string in;
      char buf[4096];
      size_t header_end = std::string::npos, want = 0;
      for (;;) {
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != in.npos) {
          want = header_end + 4 + content_length(in.substr(0, header_end));
        }
        if (header_end != std::string::npos && in.size() >= want) break;
      }
      if (header_end == std::string::npos) continue;
      IdpRequest r;
      r.method = in.substr(0, in.find(' '));
      size_t p = in.find(' ') + 1;
      r.path = in.substr(p, in.find(' ', p) - p);
      r.body = in.substr(header_end + 4);
      r.at = clock_.steady_now();
      IdpAnswer answer = handler_(r);
      std::string out = "HTTP/1.1 " + std::to_string(answer.status) +
                        " X\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        "Content-Length: " +
                        std::to_string(answer.body.size()) + "\r\n\r\n" + answer.body;
      for (size_t off = 0; off < out.size();) {
        ssize_t n = ::write(conn.get(), out.data() + off, out.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      conn.reset();
      {
        std::lock_guard lock(mu_);
        answered_.push_back(std::move(r));
      }
      cv_.notify_all();
    }
  }
  static size_t content_length(const std::string& headers) {
    for (const char* name : {"Content-Length: ", "content-length: "}) {
      size_t at = headers.find(name);
      if (at != std::string::npos) return std::stoul(headers.substr(at + std::strlen(name)));
    }
    return 0;
  }

  const Clock& clock_;
  Handler handler_;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<IdpRequest> answered_;
  std::thread thread_;
};

}  // namespace castgate::oidc_test
