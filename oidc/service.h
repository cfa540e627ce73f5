// Signs people and workloads in against OpenID providers, without ever blocking a gateway
// event loop: all HTTP, timers and key caches live on the service's own thread, and results
// come back through callbacks (which run on that thread; callers hop back to theirs).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/identity.h"
#include "oidc/config.h"
#include "oidc/http_client.h"
#include "oidc/jwt.h"

namespace castgate::oidc {

struct DeviceCode {
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // empty where the provider has none (Entra)
  std::chrono::seconds expires_in{0};
  // How long castgate waits for the approval: the code's life, or less if device_flow.timeout
  // says so. What the prompt tells the user.
  std::chrono::seconds valid_for{0};
};

struct SignInResult {
  bool ok = false;
  Identity identity;
  std::chrono::system_clock::time_point expires{};  // of the token
  std::string error;         // for the audit event: "access_denied", "expired", "idp_unreachable"
  std::string detail;        // more for the audit event; never a token
  std::string user_message;  // plain words for the user
};

class OidcService {
 public:
  using FlowId = uint64_t;

  OidcService(OidcConfig config, const Clock& clock);
  ~OidcService();

  const OidcConfig& config() const { return config_; }
  bool people_enabled() const { return config_.provider.has_value(); }
  bool workloads_enabled() const { return !config_.workload_issuers.empty(); }

  // Starts an RFC 8628 device authorization. `on_code` runs once the provider issued a code,
  // `on_done` once with the outcome (not after cancel()).
  FlowId start_device_flow(std::function<void(const DeviceCode&)> on_code,
                           std::function<void(SignInResult)> on_done);
  void cancel(FlowId id);
  // Validates a workload's token against the trusted workload issuers.
  void validate_workload_token(std::string token, std::function<void(SignInResult)> on_done);
  // Fetches discovery documents and keys ahead of the first sign-in.
  void warm_up();

 private:
  struct Issuer;
  struct Flow;
  using Done = std::function<void(std::string error)>;

  void with_metadata(Issuer& issuer, Done done);
  void with_keys(Issuer& issuer, bool refresh, Done done);
  void verify(Issuer& issuer, std::shared_ptr<Jwt> jwt, std::vector<std::string> algorithms,
              std::function<void(TokenError, std::string transport_error)> done, bool refreshed);
  void request_code(FlowId id);
  void poll(FlowId id);
  void finish(FlowId id, SignInResult result);
  void on_token(FlowId id, const HttpResponse& response);

  const OidcConfig config_;
  const Clock& clock_;
  std::unique_ptr<HttpClient> http_;
  // Everything below is touched on the HTTP thread only.
  std::unique_ptr<Issuer> people_;
  std::vector<std::unique_ptr<Issuer>> workloads_;
  std::map<FlowId, std::unique_ptr<Flow>> flows_;
};

}  // namespace castgate::oidc
