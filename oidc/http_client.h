// HTTP for talking to identity providers, on a thread of its own (libcurl's multi interface),
// so that no request ever blocks a gateway event loop. HTTPS with the system CA store (or a
// configured bundle); plain HTTP only to loopback addresses (tests and the demo). No redirects,
// bounded response size, a timeout on every request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "oidc/curl_handles.h"

namespace castgate::oidc {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string body;  // form-encoded for POST
  std::chrono::milliseconds timeout{10000};
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string error;  // transport failure (unreachable, TLS, timeout); empty otherwise
};

struct HttpOptions {
  std::string ca_bundle;  // empty: the system store
  size_t max_response = 1 << 20;
};

// True for URLs castgate may fetch: https, or http to a loopback address.
bool url_allowed(const std::string& url, std::string& why);
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

class HttpClient {
 public:
  // `clock` times the delayed tasks of post() (its steady time).
  HttpClient(HttpOptions options, const Clock& clock);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Thread-safe. `done` runs on the HTTP thread.
  void send(HttpRequest request, std::function<void(HttpResponse)> done);
  // Thread-safe: runs `fn` on the HTTP thread (after `delay`, on the clock's steady time: with a
  // clock that is not the system's, the thread notices a due task within a second, or at once
  // when woken by the next send() or post()).
  void post(std::function<void()> fn,
            std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  bool in_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Transfer;
  void run();
  void start(std::unique_ptr<Transfer> t);

  const HttpOptions options_;
  const Clock& clock_;
  curl::Multi multi_;
  std::mutex mu_;
  std::deque<std::pair<HttpRequest, std::function<void(HttpResponse)>>> requests_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> tasks_;
  bool stopping_ = false;
  std::map<CURL*, std::unique_ptr<Transfer>> active_;  // by its easy handle
  std::thread thread_;
};

}  // namespace castgate::oidc
