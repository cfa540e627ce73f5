// Name resolution off the event loop: getaddrinfo() blocks, so it runs on a small pool of
// threads and the result is posted back to the asking loop.
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "gateway/event_loop.h"

namespace castgate {

struct ResolvedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // numeric form, for logs and events
};

// Why a name did not resolve; the Error's detail is getaddrinfo's gai_strerror() text.
enum class ResolveError {
  kNotFound,   // no such name (EAI_NONAME, EAI_NODATA)
  kTemporary,  // EAI_AGAIN: the name server did not answer
  kFailed,     // any other getaddrinfo failure, or no address at all
};
std::string_view to_string(ResolveError e);
using ResolveResult = Result<std::vector<ResolvedAddress>, Error<ResolveError>>;

class Resolver {
 public:
  using Callback = std::function<void(ResolveResult)>;
  explicit Resolver(size_t threads = 2);
  ~Resolver();
  // `done` runs on `loop`'s thread. Numeric addresses are answered without a thread hop.
  void resolve(const std::string& host, int port, EventLoop& loop, Callback done);

 private:
  struct Job {
    std::string host;
    int port;
    EventLoop* loop;
    Callback done;
  };
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Synchronous lookup used by the pool and for numeric literals; at least one address when it
// succeeds.
ResolveResult resolve_now(const std::string& host, int port, bool numeric_only);

}  // namespace castgate
