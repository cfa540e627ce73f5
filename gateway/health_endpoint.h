// A tiny HTTP endpoint for orchestrators (Kubernetes probes), apart from the SSH port so that
// probes do not show up as connections in the audit stream:
//  - "GET /readyz" (and "/healthz", its older name) answers 200 while castgate can take and
//    record sessions, 503 when its recording output is stalled or broken or it is draining;
//  - "GET /livez" answers 200 while castgate's loop answers and nothing a restart would cure is
//    wrong (503 when the signer process is gone). A stalled log shipper makes castgate unready,
//    not dead: restarting the pod would only cut every live session.
//  - "GET /metrics" answers castgate's counters in Prometheus text format (metrics.h): counts
//    only, never a name, address or anything a user sent.
// Any other path is 404, any other method 405.
//
// Anyone who can reach the port must not be able to make the probes fail (and so have the pod
// restarted or taken out of service). A client is answered as soon as its request head
// ("\r\n\r\n") or 4 KiB has arrived, and then closed. Those still sending are bounded:
//  - at most kMaxClients (64) are held; when a new connection arrives at the cap, the oldest held
//    one of the source holding the most is closed to make room, so idle or slow ("slowloris")
//    holders only ever push each other out, never a probe from another address (the kubelet's),
//    however fast they come back;
//  - a new connection's request is read right when it is accepted: a probe that queued behind a
//    flood of holders has usually sent its request by then and is answered without taking a slot;
//  - each client has kClientTimeout (2 s) from its accept to finish its request, however slowly
//    it drips bytes; each request buffer holds at most kMaxRequest (4 KiB);
//  - the socket is non-blocking throughout and a loop pass accepts a bounded number of
//    connections, so the event loop never waits on a client.
// An attacker who opens connections faster than castgate's loop accepts them still fills the
// kernel's accept queue (1024 deep) and delays probes by a SYN retry; that takes a flood, which
// network policy in front of the health port should stop.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "gateway/event_loop.h"

namespace castgate {

// What a request head (untrusted bytes, at most kMaxRequest of them) asks for.
enum class HealthRoute { kReady, kLive, kMetrics, kNotFound, kBadMethod };
HealthRoute route_health_request(std::string_view request);

class HealthEndpoint final : public FdHandler {
 public:
  static constexpr size_t kMaxClients = 64;
  static constexpr size_t kMaxRequest = 4096;
  static constexpr std::chrono::milliseconds kClientTimeout{2000};

  // `status` returns an empty string when the probe (kReady or kLive) passes, else the reason;
  // `metrics`, the Prometheus text for GET /metrics.
  HealthEndpoint(EventLoop& loop, const std::string& address, int port,
                 std::function<std::string(HealthRoute)> status,
                 std::function<std::string()> metrics);
  ~HealthEndpoint() override;
  HealthEndpoint(const HealthEndpoint&) = delete;
  HealthEndpoint& operator=(const HealthEndpoint&) = delete;
  int port() const { return port_; }
  void on_fd_ready(int fd, uint32_t events) noexcept override;

 private:
  struct Client {
    UniqueFd fd;  // closed when the client is erased
    std::string request;
    std::string source;  // the peer's address
    EventLoop::TimerId timer = 0;
    std::list<int>::iterator age;  // its place in oldest_first_
  };
  // The oldest held connection of the source that holds the most.
  int eviction_victim() const;
  void accept_some();
  void read_request(int fd);
  void answer(int fd);
  void drop(int fd);

  EventLoop& loop_;
  std::function<std::string(HealthRoute)> status_;
  std::function<std::string()> metrics_;
  UniqueFd listen_fd_;
  int port_ = 0;
  std::map<int, Client> clients_;             // every one still sending its request
  std::list<int> oldest_first_;               // the same clients, in the order they were accepted
  std::map<std::string, size_t> per_source_;  // held clients by peer address
};

}  // namespace castgate
