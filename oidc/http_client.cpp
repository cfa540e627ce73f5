#include "oidc/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <cstring>

#include "oidc/curl_handles.h"

namespace castgate::oidc {

struct HttpClient::Transfer {
  // The list goes after the handle that points to it.
  curl::Slist headers;
  curl::Easy easy;
  HttpRequest request;
  std::function<void(HttpResponse)> done;
  HttpResponse response;
  size_t max = 0;
  bool too_big = false;
  char error[CURL_ERROR_SIZE] = {};
  void add_header(const char* header) {
    // libcurl returns the list's head (the same, once there is one), or null with the list intact.
    if (curl_slist* head = curl_slist_append(headers.get(), header)) {
      (void)headers.release();
      headers.reset(head);
    }
  }
};

namespace {

bool loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

}  // namespace

bool url_allowed(const std::string& url, std::string& why) {
  curl::Url u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    why = "not a valid URL: " + url;
    return false;
  }
  char* scheme = nullptr;
  char* host = nullptr;
  curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0);
  curl::Text scheme_text(scheme);
  curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
  curl::Text host_text(host);
  std::string s = scheme ? scheme : "", h = host ? host : "";
  if (s == "https") return true;
  if (s == "http" && loopback_host(h)) return true;
  why = "only https URLs are allowed (plain http only to loopback): " + url;
  return false;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    curl::Text ek(curl_easy_escape(nullptr, k.c_str(), static_cast<int>(k.size())));
    curl::Text ev(curl_easy_escape(nullptr, v.c_str(), static_cast<int>(v.size())));
    out += ek ? ek.get() : "";
    out += '=';
    out += ev ? ev.get() : "";
  }
  return out;
}

HttpClient::HttpClient(HttpOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  multi_.reset(curl_multi_init());
  thread_ = std::thread([this] { run(); });
}

HttpClient::~HttpClient() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(multi_.get());
  thread_.join();
  // Each handle leaves the multi handle before either is cleaned up.
  for (auto& [easy, t] : active_) curl_multi_remove_handle(multi_.get(), easy);
  active_.clear();
}

void HttpClient::send(HttpRequest request, std::function<void(HttpResponse)> done) {
  {
    std::lock_guard lock(mu_);
    requests_.emplace_back(std::move(request), std::move(done));
  }
  curl_multi_wakeup(multi_.get());
}

void HttpClient::post(std::function<void()> fn, std::chrono::milliseconds delay) {
  {
    std::lock_guard lock(mu_);
    tasks_.emplace(clock_.steady_now() + delay, std::move(fn));
  }
  curl_multi_wakeup(multi_.get());
}

void HttpClient::start(std::unique_ptr<Transfer> t) {
  std::string why;
  if (!url_allowed(t->request.url, why)) {
    t->response.error = why;
    t->done(std::move(t->response));
    return;
  }
  t->easy.reset(curl_easy_init());
  CURL* e = t->easy.get();
  curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t->request.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(t->request.timeout.count()));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "castgate/0.1");
  if (!options_.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_bundle.c_str());
  t->max = options_.max_response;
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(
      e, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
        auto* tr = static_cast<Transfer*>(user);
        if (tr->response.body.size() + size * n > tr->max) {
          tr->too_big = true;
          return 0;  // aborts the transfer
        }
        tr->response.body.append(data, size * n);
        return size * n;
      });
  t->add_header("Accept: application/json");
  for (const auto& h : t->request.headers) t->add_header(h.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.get());
  if (t->request.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->request.body.size()));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, t->request.body.c_str());
  }
  curl_multi_add_handle(multi_.get(), e);
  active_.emplace(e, std::move(t));
}

void HttpClient::run() {
  CURLM* multi = multi_.get();
  for (;;) {
    std::deque<std::pair<HttpRequest, std::function<void(HttpResponse)>>> requests;
    std::vector<std::function<void()>> due;
    int timeout_ms = 1000;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      requests.swap(requests_);
      auto now = clock_.steady_now();
      while (!tasks_.empty() && tasks_.begin()->first <= now) {
        due.push_back(std::move(tasks_.begin()->second));
        tasks_.erase(tasks_.begin());
      }
      if (!tasks_.empty()) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tasks_.begin()->first - now)
                      .count();
        timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, 1000));
      }
    }
    for (auto& [req, done] : requests) {
      auto t = std::make_unique<Transfer>();
      t->request = std::move(req);
      t->done = std::move(done);
      start(std::move(t));
    }
    for (auto& fn : due) fn();
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg* msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = active_.find(msg->easy_handle);
      if (it == active_.end()) continue;
      auto t = std::move(it->second);
      active_.erase(it);
      curl_multi_remove_handle(multi, t->easy.get());
      if (msg->data.result != CURLE_OK) {
        t->response.error = t->too_big ? "response too large"
                                       : (t->error[0] ? std::string(t->error)
                                                      : curl_easy_strerror(msg->data.result));
      } else {
        curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &t->response.status);
      }
      t->done(std::move(t->response));
    }
    if (!due.empty() || !requests.empty()) timeout_ms = 0;
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
}

}  // namespace castgate::oidc
