#include "gateway/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>

namespace castgate {

std::string_view to_string(ResolveError e) {
  switch (e) {
    case ResolveError::kNotFound:
      return "not found";
    case ResolveError::kTemporary:
      return "temporary failure";
    case ResolveError::kFailed:
      return "failed";
  }
  return "unknown";
}

ResolveResult resolve_now(const std::string& host, int port, bool numeric_only) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (numeric_only ? AI_NUMERICHOST : 0);
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    auto code = rc == EAI_NONAME || rc == EAI_NODATA ? ResolveError::kNotFound
                : rc == EAI_AGAIN                    ? ResolveError::kTemporary
                                                     : ResolveError::kFailed;
    return fail(code, gai_strerror(rc));
  }
  std::vector<ResolvedAddress> out;
  for (addrinfo* a = res; a; a = a->ai_next) {
    ResolvedAddress r;
    std::memcpy(&r.addr, a->ai_addr, a->ai_addrlen);
    r.len = a->ai_addrlen;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
    else if (a->ai_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf, sizeof buf);
    r.text = buf;
    out.push_back(r);
  }
  freeaddrinfo(res);
  // getaddrinfo succeeds with an address; had it none, the callers' message stays as before.
  if (out.empty()) return fail(ResolveError::kFailed, "");
  return out;
}

Resolver::Resolver(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Resolver::resolve(const std::string& host, int port, EventLoop& loop, Callback done) {
  auto numeric = resolve_now(host, port, true);
  if (numeric) {
    loop.defer([done = std::move(done), numeric]() mutable { done(std::move(numeric)); });
    return;
  }
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(Job{host, port, &loop, std::move(done)});
  }
  cv_.notify_one();
}

void Resolver::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto result = resolve_now(job.host, job.port, false);
    job.loop->post([done = std::move(job.done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
}

}  // namespace castgate
