#include "oidc/service.h"

#include <atomic>

#include "common/log.h"
#include "common/text.h"
#include "oidc/claims.h"
#include "oidc/idp_messages.h"

namespace castgate::oidc {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct OidcService::Issuer {
  std::string url;       // the issuer identifier
  std::string jwks_uri;  // from discovery, or configured
  DiscoveryDocument metadata;
  bool have_metadata = false;
  std::chrono::steady_clock::time_point metadata_at{};
  JwkSet keys;
  bool have_keys = false;
  std::chrono::steady_clock::time_point keys_at{};
  std::vector<Done> waiting_metadata, waiting_keys;
  bool discovery_needed = true;
};

struct OidcService::Flow {
  std::function<void(const DeviceCode&)> on_code;
  std::function<void(SignInResult)> on_done;
  std::string device_code;
  seconds interval{5};
  std::chrono::steady_clock::time_point deadline{};
  int transport_failures = 0;
  bool deadline_is_code_expiry = false;
  bool cancelled = false;
};

namespace {

constexpr auto kMetadataTtl = std::chrono::hours(1);
constexpr int kMaxTransportFailures = 3;
constexpr milliseconds kRequestTimeout{10000};

std::string error_of(const HttpResponse& r) {
  if (!r.error.empty()) return r.error;
  std::string e = oauth_error_text(r.body);
  return e.empty() ? "HTTP " + std::to_string(r.status) : e;
}

SignInResult failure(std::string error, std::string user_message, std::string detail = "") {
  SignInResult r;
  r.error = std::move(error);
  r.user_message = std::move(user_message);
  r.detail = std::move(detail);
  return r;
}

// Claims that name no identity: the mapping's reason for the audit event, its words for the user.
SignInResult failure(const Error<MappingError>& e) {
  return failure(std::string(to_string(e.code)), e.detail);
}

}  // namespace

OidcService::OidcService(OidcConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {
  HttpOptions options;
  options.ca_bundle = config_.ca_bundle;
  http_ = std::make_unique<HttpClient>(options, clock_);
  if (config_.provider) {
    people_ = std::make_unique<Issuer>();
    people_->url = config_.provider->issuer;
  }
  for (const auto& w : config_.workload_issuers) {
    auto i = std::make_unique<Issuer>();
    i->url = w.issuer;
    if (!w.jwks_uri.empty()) {
      i->jwks_uri = w.jwks_uri;
      i->discovery_needed = false;
    }
    workloads_.push_back(std::move(i));
  }
}

OidcService::~OidcService() {
  http_.reset();  // joins the thread before the state it uses goes away
}

void OidcService::warm_up() {
  http_->post([this] {
    auto ignore = [](const std::string&) {};
    if (people_) with_keys(*people_, false, ignore);
    for (auto& w : workloads_) with_keys(*w, false, ignore);
  });
}

void OidcService::with_metadata(Issuer& issuer, Done done) {
  auto now = clock_.steady_now();
  if (!issuer.discovery_needed || (issuer.have_metadata && now - issuer.metadata_at < kMetadataTtl))
    return done("");
  issuer.waiting_metadata.push_back(std::move(done));
  if (issuer.waiting_metadata.size() > 1) return;  // a fetch is under way
  HttpRequest req;
  req.url = issuer.url + "/.well-known/openid-configuration";
  req.timeout = kRequestTimeout;
  http_->send(req, [this, &issuer](HttpResponse r) {
    std::string error;
    std::optional<DiscoveryDocument> doc;
    if (!r.error.empty() || r.status != 200) {
      error = "discovery at " + issuer.url + " failed: " + error_of(r);
    } else if (auto parsed = parse_discovery(r.body, issuer.url)) {
      doc = std::move(*parsed);
    } else {
      error = "discovery at " + issuer.url + ": " + parsed.error().detail;
    }
    if (doc) {
      issuer.metadata = std::move(*doc);
      issuer.have_metadata = true;
      issuer.metadata_at = clock_.steady_now();
      issuer.jwks_uri = issuer.metadata.jwks_uri;
    } else {
      log::warn("oidc: " + error);
    }
    auto waiting = std::move(issuer.waiting_metadata);
    issuer.waiting_metadata.clear();
    for (auto& w : waiting) w(error);
  });
}

void OidcService::with_keys(Issuer& issuer, bool refresh, Done done) {
  if (issuer.have_keys && !refresh) return done("");
  issuer.waiting_keys.push_back(std::move(done));
  if (issuer.waiting_keys.size() > 1) return;
  with_metadata(issuer, [this, &issuer](const std::string& md_error) {
    auto finish = [&issuer](const std::string& error) {
      auto waiting = std::move(issuer.waiting_keys);
      issuer.waiting_keys.clear();
      for (auto& w : waiting) w(error);
    };
    if (!md_error.empty()) return finish(md_error);
    HttpRequest req;
    req.url = issuer.jwks_uri;
    req.timeout = kRequestTimeout;
    issuer.keys_at = clock_.steady_now();
    http_->send(req, [&issuer, finish](HttpResponse r) {
      std::string error;
      if (!r.error.empty() || r.status != 200) {
        error = "fetching the keys of " + issuer.url + " failed: " + error_of(r);
      } else if (auto set = JwkSet::parse(r.body)) {
        issuer.keys = std::move(*set);
        issuer.have_keys = true;
      } else {
        error = std::move(set).error().detail;
      }
      if (!error.empty()) log::warn("oidc: " + error);
      finish(error);
    });
  });
}

void OidcService::verify(Issuer& issuer, std::shared_ptr<Jwt> jwt,
                         std::vector<std::string> algorithms,
                         std::function<void(TokenError, std::string)> done, bool refreshed) {
  with_keys(issuer, false,
            [this, &issuer, jwt, algorithms, done, refreshed](const std::string& error) {
              if (!error.empty() && !issuer.have_keys) return done(TokenError::kUnknownKey, error);
              TokenError e = verify_signature(*jwt, issuer.keys, algorithms);
              auto since = clock_.steady_now() - issuer.keys_at;
              bool fetching = !issuer.waiting_keys.empty();
              if (e == TokenError::kUnknownKey && !refreshed &&
                  (since >= config_.jwks_min_refresh || fetching)) {
                // Keys rotate: fetch the set again once, not more often than jwks_min_refresh;
                // a token that comes while the set is being fetched waits for that fetch.
                return with_keys(issuer, true,
                                 [this, &issuer, jwt, algorithms, done](const std::string&) {
                                   verify(issuer, jwt, algorithms, done, true);
                                 });
              }
              done(e, "");
            });
}

OidcService::FlowId OidcService::start_device_flow(std::function<void(const DeviceCode&)> on_code,
                                                   std::function<void(SignInResult)> on_done) {
  static std::atomic<FlowId> ids{1};
  FlowId id = ids.fetch_add(1);
  auto flow = std::make_unique<Flow>();
  flow->on_code = std::move(on_code);
  flow->on_done = std::move(on_done);
  http_->post([this, id, f = std::shared_ptr<Flow>(flow.release())]() mutable {
    flows_[id] = std::make_unique<Flow>(std::move(*f));
    if (!people_)
      return finish(
          id, failure("not_configured", "sign-in with an identity provider is not configured"));
    request_code(id);
  });
  return id;
}

void OidcService::cancel(FlowId id) {
  http_->post([this, id] {
    auto it = flows_.find(id);
    if (it != flows_.end()) flows_.erase(it);
  });
}

void OidcService::finish(FlowId id, SignInResult result) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  auto flow = std::move(it->second);
  flows_.erase(it);
  flow->on_done(std::move(result));
}

void OidcService::request_code(FlowId id) {
  with_metadata(*people_, [this, id](const std::string& error) {
    if (!flows_.count(id)) return;
    if (!error.empty())
      return finish(id, failure("idp_unreachable",
                                "the sign-in service (" + people_->url +
                                    ") cannot be reached; try "
                                    "again later or ask your administrator",
                                error));
    const auto& md = people_->metadata;
    if (md.device_authorization_endpoint.empty() || md.token_endpoint.empty())
      return finish(
          id, failure("idp_no_device_flow", "the identity provider does not offer device sign-in",
                      "no device_authorization_endpoint in discovery"));
    const auto& p = *config_.provider;
    std::vector<std::pair<std::string, std::string>> form = {{"client_id", p.client_id},
                                                             {"scope", ""}};
    for (auto& s : p.scopes) form[1].second += (form[1].second.empty() ? "" : " ") + s;
    if (!p.client_secret.empty()) form.emplace_back("client_secret", p.client_secret);
    HttpRequest req;
    req.method = "POST";
    req.url = md.device_authorization_endpoint;
    req.headers = {"Content-Type: application/x-www-form-urlencoded"};
    req.body = form_encode(form);
    req.timeout = kRequestTimeout;
    http_->send(req, [this, id](HttpResponse r) {
      auto it = flows_.find(id);
      if (it == flows_.end()) return;
      Flow& f = *it->second;
      if (!r.error.empty())
        return finish(
            id, failure("idp_unreachable", "the sign-in service cannot be reached; try again later",
                        r.error));
      if (r.status != 200)
        return finish(id, failure("idp_error", "the identity provider refused to start a sign-in",
                                  error_of(r)));
      auto answer = parse_device_authorization(r.body);
      if (!answer)
        return finish(id, failure("idp_error", "the identity provider sent an invalid sign-in code",
                                  answer.error().detail));
      DeviceCode code;
      f.device_code = answer->device_code;
      code.user_code = answer->user_code;
      code.verification_uri = answer->verification_uri;
      code.verification_uri_complete = answer->verification_uri_complete;
      code.expires_in = answer->expires_in;
      f.interval = answer->interval;
      auto limit = std::min(code.expires_in, config_.device.longest_wait());
      f.deadline_is_code_expiry = code.expires_in <= config_.device.longest_wait();
      code.valid_for = limit;
      f.deadline = clock_.steady_now() + limit;
      f.on_code(code);
      http_->post([this, id] { poll(id); }, duration_cast<milliseconds>(f.interval));
    });
  });
}

void OidcService::poll(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  if (clock_.steady_now() >= f.deadline) {
    if (f.deadline_is_code_expiry)
      return finish(id, failure("expired_token",
                                "the sign-in code expired before it was approved; run ssh again"));
    return finish(id, failure("timeout", "the sign-in was not approved in time; run ssh again"));
  }
  const auto& p = *config_.provider;
  std::vector<std::pair<std::string, std::string>> form = {
      {"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
      {"device_code", f.device_code},
      {"client_id", p.client_id}};
  if (!p.client_secret.empty()) form.emplace_back("client_secret", p.client_secret);
  HttpRequest req;
  req.method = "POST";
  req.url = people_->metadata.token_endpoint;
  req.headers = {"Content-Type: application/x-www-form-urlencoded"};
  req.body = form_encode(form);
  req.timeout = kRequestTimeout;
  http_->send(req, [this, id](HttpResponse r) { on_token(id, r); });
}

void OidcService::on_token(FlowId id, const HttpResponse& r) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  auto again = [&] {
    http_->post([this, id] { poll(id); }, duration_cast<milliseconds>(f.interval));
  };
  if (!r.error.empty()) {
    if (++f.transport_failures >= kMaxTransportFailures)
      return finish(id, failure("idp_unreachable",
                                "the sign-in service stopped answering; try again later", r.error));
    return again();
  }
  f.transport_failures = 0;
  if (r.status != 200) {
    std::string error = oauth_error_code(r.body);
    if (error == "authorization_pending") return again();
    if (error == "slow_down") {
      f.interval += seconds(5);  // RFC 8628 section 3.5
      return again();
    }
    if (error == "expired_token")
      return finish(id, failure("expired_token",
                                "the sign-in code expired before it was approved; run ssh again"));
    if (error == "access_denied" || error == "authorization_declined")
      return finish(id, failure("access_denied", "the sign-in was declined"));
    return finish(id,
                  failure("idp_error", "the identity provider refused the sign-in", error_of(r)));
  }
  auto id_token = id_token_of(r.body);
  if (!id_token)
    return finish(id, failure("no_id_token", "the identity provider sent no identity token"));
  auto jwt = parse_jwt(*id_token);
  if (!jwt)
    return finish(
        id, failure(std::string(to_string(jwt.error())), user_message(jwt.error()), "id_token"));
  auto shared = std::make_shared<Jwt>(std::move(*jwt));
  const auto& p = *config_.provider;
  verify(
      *people_, shared, p.algorithms,
      [this, id, shared](TokenError e, std::string transport) {
        if (!flows_.count(id)) return;
        if (e != TokenError::kNone)
          return finish(
              id, failure(std::string(to_string(e)), user_message(e),
                          transport.empty() ? "alg " + printable(shared->alg(), 20) : transport));
        const auto& prov = *config_.provider;
        ValidationRules rules;
        rules.algorithms = prov.algorithms;
        rules.issuer = prov.issuer;
        rules.audiences = {prov.client_id};
        rules.authorized_party = prov.client_id;
        rules.clock_skew = prov.clock_skew;
        rules.max_age = prov.max_token_age;
        TokenError ce = check_claims(*shared, rules, clock_.now());
        if (ce != TokenError::kNone)
          return finish(id, failure(std::string(to_string(ce)), user_message(ce)));
        auto mapped = map_person(prov, shared->claims);
        if (!mapped) return finish(id, failure(mapped.error()));
        SignInResult ok;
        ok.ok = true;
        ok.identity = std::move(mapped).value();
        ok.expires = expiry(*shared);
        finish(id, std::move(ok));
      },
      false);
}

void OidcService::validate_workload_token(std::string token,
                                          std::function<void(SignInResult)> on_done) {
  http_->post([this, token = std::move(token), on_done = std::move(on_done)]() mutable {
    auto jwt = parse_jwt(token);
    if (!jwt)
      return on_done(failure(std::string(to_string(jwt.error())), user_message(jwt.error()),
                             "workload token"));
    std::string iss = jwt->claims.contains("iss") && jwt->claims["iss"].is_string()
                          ? jwt->claims["iss"].get<std::string>()
                          : "";
    size_t index = workloads_.size();
    for (size_t i = 0; i < config_.workload_issuers.size(); ++i)
      if (config_.workload_issuers[i].issuer == iss) index = i;
    if (index == workloads_.size())
      return on_done(failure("untrusted_issuer",
                             "the token's issuer is not trusted by this gateway",
                             "iss " + printable(iss, 200)));
    auto shared = std::make_shared<Jwt>(std::move(*jwt));
    const WorkloadIssuer& wi = config_.workload_issuers[index];
    verify(
        *workloads_[index], shared, wi.algorithms,
        [this, shared, &wi, on_done](TokenError e, std::string transport) {
          if (e != TokenError::kNone)
            return on_done(failure(std::string(to_string(e)), user_message(e),
                                   transport.empty() ? "issuer " + wi.name : transport));
          ValidationRules rules;
          rules.algorithms = wi.algorithms;
          rules.issuer = wi.issuer;
          rules.audiences = wi.audiences;
          rules.max_age = wi.max_token_age;
          TokenError ce = check_claims(*shared, rules, clock_.now());
          if (ce != TokenError::kNone)
            return on_done(
                failure(std::string(to_string(ce)), user_message(ce), "issuer " + wi.name));
          auto mapped = map_workload(wi, shared->claims);
          if (!mapped) return on_done(failure(mapped.error()));
          SignInResult ok;
          ok.ok = true;
          ok.identity = std::move(mapped).value();
          ok.expires = expiry(*shared);
          on_done(std::move(ok));
        },
        false);
  });
}

}  // namespace castgate::oidc
