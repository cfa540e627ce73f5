// OidcService's device flow and key cache, on a manual clock: every poll, expiry and refresh is
// decided by the clock the test moves, never by how long the machine takes.
#include "oidc/service.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>

#include "tests/oidc/loopback_idp.h"
#include "tests/oidc/test_keys.h"

using namespace castgate;
using namespace castgate::oidc;
using namespace castgate::oidc_test;
using namespace std::chrono_literals;
using std::chrono::seconds;

namespace {

const auto kServiceStart = std::chrono::system_clock::time_point(seconds(1800000000));
const IdpAnswer kPending{400, R"({"error":"authorization_pending"})"};

// What one device flow reported, for the test thread.
struct FlowProbe {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<DeviceCode> code;
  std::optional<SignInResult> result;
  int results = 0;

  void on_code(const DeviceCode& c) {
    std::lock_guard lock(mu);
    code = c;
    cv.notify_all();
  }
  void on_done(SignInResult r) {
    std::lock_guard lock(mu);
    result = std::move(r);
    ++results;
    cv.notify_all();
  }
  DeviceCode wait_code() {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return code.has_value() || result.has_value(); }));
    REQUIRE_MESSAGE(code.has_value(), (result ? result->error + " " + result->detail : ""));
    return *code;
  }
  SignInResult wait_result() {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return result.has_value(); }));
    return *result;
  }
  bool finished() {
    std::lock_guard lock(mu);
    return result.has_value();
  }
};

// A provider on loopback whose answers the test sets, and a service using it on a manual clock.
struct Provider {
  ManualClock clock{kServiceStart};
  std::mutex mu;  // guards the answers below (read on the server's thread)
  json device_answer;
  int device_status = 200;
  bool offers_device_flow = true;
  int discovery_status = 200;
  std::deque<IdpAnswer> token_answers;  // in order; then kPending
  json keys = {{"keys", json::array()}};
  LoopbackIdp idp{clock, [this](const IdpRequest& r) { return answer(r); }};
  std::unique_ptr<OidcService> service;
  std::chrono::steady_clock::time_point steady_start = clock.steady_now();

  Provider() {
    device_answer = {{"device_code", "device-1"},
                     {"user_code", "ABCD-EFGH"},
                     {"verification_uri", idp.url() + "/activate"},
                     {"expires_in", 600},
                     {"interval", 5}};
  }

  IdpAnswer answer(const IdpRequest& r) {
    std::lock_guard lock(mu);
    if (r.path == "/.well-known/openid-configuration") {
      json d = {{"issuer", idp.url()},
                {"jwks_uri", idp.url() + "/jwks"},
                {"token_endpoint", idp.url() + "/token"}};
      if (offers_device_flow) d["device_authorization_endpoint"] = idp.url() + "/device";
      return {discovery_status, d.dump()};
    }
    if (r.path == "/device") return {device_status, device_answer.dump()};
    if (r.path == "/jwks") return {200, keys.dump()};
    if (r.path == "/token") {
      if (token_answers.empty()) return kPending;
      IdpAnswer a = token_answers.front();
      token_answers.pop_front();
      return a;
    }
    return {404, "{}"};
  }

  OidcConfig people_config() {
    OidcConfig c;
    ProviderConfig p;
    p.issuer = idp.url();
    p.client_id = "castgate";
    p.algorithms = {"ES256"};
    c.provider = p;
    return c;
  }
  void start(OidcConfig config) { service = std::make_unique<OidcService>(config, clock); }

  // Returns once the service's thread has gone round its loop a few times: what was due at the
  // clock's time has run, and an answer already written to it has been read.
  void settle() {
    for (int i = 0; i < 3; ++i) {
      std::promise<void> passed;
      auto f = passed.get_future();
      // A token that does not parse is refused on the service's thread, without a request.
      service->validate_workload_token("not-a-token",
                                       [&passed](SignInResult) { passed.set_value(); });
      REQUIRE(f.wait_for(10s) == std::future_status::ready);
    }
  }
  // Moves the clock to `t` after steady_start and lets the service act on it.
  void advance_to(std::chrono::milliseconds t) {
    clock.advance(std::chrono::duration_cast<std::chrono::microseconds>(steady_start + t -
                                                                        clock.steady_now()));
    settle();
  }
  size_t count(const std::string& path) { return idp.answered(path).size(); }
  // Waits for the `n`th answer to `path`, then for the service to have read it.
  void answered(const std::string& path, size_t n) {
    REQUIRE(idp.wait_for(path, n));
    settle();
  }
  std::shared_ptr<FlowProbe> start_flow(OidcService::FlowId* id = nullptr) {
    auto probe = std::make_shared<FlowProbe>();
    auto flow = service->start_device_flow([probe](const DeviceCode& c) { probe->on_code(c); },
                                           [probe](SignInResult r) { probe->on_done(r); });
    if (id) *id = flow;
    return probe;
  }
  // Starts a flow and waits until its first poll is scheduled.
  std::shared_ptr<FlowProbe> start_flow_with_code(OidcService::FlowId* id = nullptr) {
    auto probe = start_flow(id);
    probe->wait_code();
    settle();
    return probe;
  }
  std::vector<std::chrono::milliseconds> token_poll_times() {
    std::vector<std::chrono::milliseconds> out;
    for (auto& r : idp.answered("/token"))
      out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(r.at - steady_start));
    return out;
  }
  json claims(const std::string& sub) {
    int64_t now = unix_seconds(clock.now());
    return {{"iss", idp.url()}, {"aud", "castgate"}, {"sub", sub},
            {"iat", now - 10},  {"nbf", now - 10},   {"exp", now + 600}};
  }
};

std::string token(const TestKey& k, const json& claims) {
  return sign(k, {{"alg", k.alg}, {"kid", k.jwk["kid"]}, {"typ", "JWT"}}, claims);
}

using ms = std::chrono::milliseconds;

}  // namespace

TEST_CASE("a device code expires exactly at its lifetime, polled at its interval until then") {
  Provider p;
  p.device_answer["expires_in"] = 20;
  p.start(p.people_config());
  auto flow = p.start_flow_with_code();
  CHECK(flow->code->user_code == "ABCD-EFGH");
  CHECK(flow->code->expires_in == 20s);
  CHECK(flow->code->valid_for == 20s);

  p.advance_to(ms(4999));
  CHECK(p.count("/token") == 0);  // never before the interval
  p.advance_to(5s);
  p.answered("/token", 1);
  for (auto t : {10s, 15s}) {
    p.advance_to(t - ms(1));
    CHECK(p.count("/token") == static_cast<size_t>(t / 5s - 1));
    p.advance_to(t);
    p.answered("/token", static_cast<size_t>(t / 5s));
  }
  CHECK(p.token_poll_times() == std::vector<ms>{5s, 10s, 15s});

  p.advance_to(ms(19999));
  CHECK_FALSE(flow->finished());
  p.advance_to(20s);
  SignInResult r = flow->wait_result();
  CHECK_FALSE(r.ok);
  CHECK(r.error == "expired_token");
  CHECK(p.count("/token") == 3);  // the expired code is not sent again
}

TEST_CASE("a configured device_flow.timeout shorter than the code ends the wait at the next poll") {
  Provider p;
  auto config = p.people_config();
  config.device.timeout = 12s;
  p.start(config);
  auto flow = p.start_flow_with_code();
  CHECK(flow->code->expires_in == 600s);
  CHECK(flow->code->valid_for == 12s);  // what the user is told
  for (auto t : {5s, 10s}) {
    p.advance_to(t);
    p.answered("/token", static_cast<size_t>(t / 5s));
  }
  p.advance_to(ms(14999));
  CHECK_FALSE(flow->finished());  // the deadline is checked when a poll is due
  p.advance_to(15s);
  CHECK(flow->wait_result().error == "timeout");
  CHECK(p.count("/token") == 2);
}

TEST_CASE("slow_down adds 5 seconds to the polling interval each time (RFC 8628 3.5)") {
  Provider p;
  p.token_answers = {{400, R"({"error":"slow_down"})"}, {400, R"({"error":"slow_down"})"}};
  p.start(p.people_config());
  OidcService::FlowId id = 0;
  auto flow = p.start_flow_with_code(&id);

  p.advance_to(5s);
  p.answered("/token", 1);  // slow_down: 10 s from here
  p.advance_to(ms(14999));
  CHECK(p.count("/token") == 1);
  p.advance_to(15s);
  p.answered("/token", 2);  // slow_down again: 15 s from here
  p.advance_to(ms(29999));
  CHECK(p.count("/token") == 2);
  p.advance_to(30s);
  p.answered("/token", 3);  // authorization_pending keeps the interval
  p.advance_to(ms(44999));
  CHECK(p.count("/token") == 3);
  p.advance_to(45s);
  p.answered("/token", 4);
  CHECK(p.token_poll_times() == std::vector<ms>{5s, 15s, 30s, 45s});

  // A cancelled flow polls no more and reports nothing.
  p.service->cancel(id);
  p.advance_to(120s);
  CHECK(p.count("/token") == 4);
  CHECK_FALSE(flow->finished());
  for (auto& r : p.idp.answered("/token")) {
    CHECK(r.body.find("device_code=device-1") != std::string::npos);
    CHECK(r.body.find("client_id=castgate") != std::string::npos);
  }
}

TEST_CASE("an approved device flow signs the person in with the verified id_token") {
  Provider p;
  auto key = make_key("ES256", "k1");
  p.keys = {{"keys", {key.jwk}}};
  p.start(p.people_config());
  auto flow = p.start_flow_with_code();
  p.advance_to(5s);
  p.answered("/token", 1);  // authorization_pending
  CHECK_FALSE(flow->finished());
  json claims = p.claims("alice");
  claims["preferred_username"] = "alice@example.com";
  {
    std::lock_guard lock(p.mu);
    p.token_answers.push_back({200, json{{"id_token", token(key, claims)}}.dump()});
  }
  p.advance_to(10s);
  SignInResult r = flow->wait_result();
  REQUIRE_MESSAGE(r.ok, (r.error + " " + r.detail));
  CHECK(r.identity.subject == "oidc:alice");
  CHECK(r.identity.name == "alice@example.com");
  CHECK(r.expires == std::chrono::system_clock::time_point(seconds(claims["exp"].get<int64_t>())));
  CHECK(flow->results == 1);
  CHECK(p.count("/.well-known/openid-configuration") == 1);
  CHECK(p.count("/device") == 1);
  CHECK(p.count("/jwks") == 1);
}

namespace {

// Runs one flow to its end on `p` (set up by the caller); `polls`: the end comes from a poll.
void check_refusal(Provider& p, bool polls, const std::string& error) {
  p.start(p.people_config());
  auto flow = p.start_flow();
  if (polls) {
    flow->wait_code();
    p.settle();
    p.advance_to(5s);
  }
  SignInResult r = flow->wait_result();
  CHECK_FALSE(r.ok);
  CHECK(r.error == error);
  CHECK_FALSE(r.user_message.empty());
  p.advance_to(60s);
  CHECK(flow->results == 1);
  CHECK(p.count("/token") == (polls ? 1u : 0u));
}

}  // namespace

TEST_CASE("device flow: each answer of the token endpoint that ends the flow, with its reason") {
  struct Case {
    IdpAnswer answer;
    const char* error;
  };
  for (const auto& c : {Case{{400, R"({"error":"access_denied"})"}, "access_denied"},
                        Case{{400, R"({"error":"expired_token"})"}, "expired_token"},
                        Case{{400, R"({"error":"invalid_grant"})"}, "idp_error"},
                        Case{{200, R"({"access_token":"x"})"}, "no_id_token"}}) {
    CAPTURE(c.answer.body);
    Provider p;
    p.token_answers = {c.answer};
    check_refusal(p, true, c.error);
  }
}

TEST_CASE("device flow: a provider that cannot start one ends it at once, with the reason") {
  struct Case {
    const char* name;
    void (*set_up)(Provider&);
    const char* error;
  };
  const Case cases[] = {
      {"device authorization refused", [](Provider& p) { p.device_status = 400; }, "idp_error"},
      {"invalid device answer", [](Provider& p) { p.device_answer.erase("user_code"); },
       "idp_error"},
      {"no device endpoint", [](Provider& p) { p.offers_device_flow = false; },
       "idp_no_device_flow"},
      {"discovery fails", [](Provider& p) { p.discovery_status = 404; }, "idp_unreachable"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Provider p;
    c.set_up(p);
    check_refusal(p, false, c.error);
  }
}

TEST_CASE("without a provider, a device flow ends at once as not configured") {
  Provider p;
  p.start(OidcConfig{});
  SignInResult r = p.start_flow()->wait_result();
  CHECK(r.error == "not_configured");
  CHECK(p.idp.answered().empty());
}

TEST_CASE("the discovery document is kept for an hour") {
  Provider p;
  p.start(p.people_config());
  OidcService::FlowId id = 0;
  auto first = p.start_flow_with_code(&id);
  p.service->cancel(id);
  p.advance_to(59min);
  auto second = p.start_flow_with_code(&id);
  p.service->cancel(id);
  CHECK(p.count("/.well-known/openid-configuration") == 1);
  CHECK(p.count("/device") == 2);
  p.advance_to(60min);
  auto third = p.start_flow_with_code(&id);
  p.service->cancel(id);
  CHECK(p.count("/.well-known/openid-configuration") == 2);
}

TEST_CASE(
    "workload keys: kept however old, fetched again for an unknown kid at most every "
    "jwks_min_refresh") {
  Provider p;
  auto k1 = make_key("ES256", "k1"), k2 = make_key("ES256", "k2"), k3 = make_key("ES256", "k3");
  p.keys = {{"keys", {k1.jwk}}};
  OidcConfig config;
  WorkloadIssuer w;
  w.name = "ci";
  w.issuer = p.idp.url();
  w.audiences = {"castgate"};
  w.algorithms = {"ES256"};
  w.jwks_uri = p.idp.url() + "/jwks";  // no discovery
  w.rules = {{"build-*", "ci-bot", {"ci"}}};
  config.workload_issuers = {w};
  REQUIRE(config.jwks_min_refresh == 30s);
  p.start(config);
  auto validate = [&](const TestKey& k) {
    std::promise<SignInResult> done;
    auto f = done.get_future();
    p.service->validate_workload_token(token(k, p.claims("build-7")),
                                       [&done](SignInResult r) { done.set_value(std::move(r)); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  };

  SignInResult r = validate(k1);
  REQUIRE_MESSAGE(r.ok, (r.error + " " + r.detail));
  CHECK(r.identity.subject == "ci:build-7");
  CHECK(r.identity.name == "ci-bot");
  CHECK(p.count("/jwks") == 1);

  p.advance_to(10h);  // keys have no maximum age: a known kid never fetches them again
  CHECK(validate(k1).ok);
  CHECK(p.count("/jwks") == 1);

  {
    std::lock_guard lock(p.mu);
    p.keys = {{"keys", {k1.jwk, k2.jwk}}};  // rotated in
  }
  r = validate(k2);  // unknown kid, last fetch long ago: fetched again, then accepted
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(p.count("/jwks") == 2);

  {
    std::lock_guard lock(p.mu);
    p.keys = {{"keys", {k1.jwk, k2.jwk, k3.jwk}}};
  }
  p.advance_to(10h + 29s);
  r = validate(k3);  // within jwks_min_refresh of the last fetch: refused without a fetch
  CHECK(r.error == "unknown_key");
  CHECK(p.count("/jwks") == 2);
  p.advance_to(10h + 30s);
  r = validate(k3);
  CHECK_MESSAGE(r.ok, r.error);
  CHECK(p.count("/jwks") == 3);
  CHECK(p.count("/.well-known/openid-configuration") == 0);
}
