// The connection from castgate to a target: resolve, connect (non-blocking), SSH handshake,
// pinned host-key check, sign in with the session's brokered credential. Every step runs on the
// owning session's event loop and never blocks it; what runs later (the resolver's answer, the
// connect timeout) finds the upstream again through its session's handle (session_host.h).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "gateway/event_loop.h"
#include "gateway/known_hosts.h"
#include "gateway/resolver.h"
#include "gateway/session_host.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"

namespace castgate {

struct UpstreamFailure {
  std::string code;     // for the audit event: "target_unreachable", "host_key_mismatch", ...
  std::string message;  // for the user: says what happened and what to do
};

class Upstream final : public FdHandler {
 public:
  enum class State { kIdle, kResolving, kConnecting, kHandshake, kAuthenticating, kReady, kFailed };
  // This upstream, named through its session.
  using Handle = SessionPartRef<Upstream>;

  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void on_upstream_ready() = 0;
    virtual void on_upstream_failed(const UpstreamFailure& failure) = 0;
    // Packets were processed on the upstream connection: channels may have data or news.
    virtual void on_upstream_io() = 0;
    // The credential to sign in with. `local_ip` is castgate's address on the upstream
    // connection (for the certificate's source-address). Returns null on failure.
    virtual ssh::Key make_upstream_credential(const std::string& local_ip,
                                              std::string& description) = 0;
    // An exception escaped the upstream's own event handling.
    virtual void on_upstream_fault(const char* what) noexcept = 0;
  };

  Upstream(EventLoop& loop, Handle self, Resolver& resolver, const Target& target,
           std::string login, const KnownHosts& known_hosts, Owner& owner,
           std::chrono::seconds connect_timeout);
  ~Upstream() override;

  void start();
  State state() const { return state_; }
  ssh_session session() const { return session_.get(); }
  const std::string& address() const { return address_text_; }
  const std::string& host_key_fingerprint() const { return host_key_fingerprint_; }
  const std::string& credential_description() const { return credential_description_; }
  // Lets the loop watch for writability while libssh has output queued.
  void update_interest();
  void on_fd_ready(int fd, uint32_t events) override;
  void on_fault(const char* what) noexcept override;
  // Sends SSH_MSG_DISCONNECT and closes the connection.
  void disconnect();

 private:
  void on_resolved(ResolveResult addresses);
  void connect_next();
  void on_tcp_connected();
  void step();
  bool check_host_key();
  void fail(std::string code, std::string message);
  void unwatch();

  EventLoop& loop_;
  const Handle self_;
  Resolver& resolver_;
  const Target& target_;
  const std::string login_;
  const KnownHosts& known_hosts_;
  Owner& owner_;
  const std::chrono::seconds connect_timeout_;
  State state_ = State::kIdle;
  std::vector<ResolvedAddress> addresses_;
  size_t next_address_ = 0;
  std::string address_text_;
  std::string last_connect_error_;
  std::string host_key_fingerprint_;
  std::string credential_description_;
  UniqueFd fd_;  // our socket until libssh owns it
  int watched_fd_ = -1;
  uint32_t interest_ = 0;
  EventLoop::TimerId timeout_timer_ = 0;
  ssh::Session session_;
  ssh::Event event_;
  ssh::Key credential_;
};

}  // namespace castgate
