#include "common/json_config.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "asciicast/alert_rules.h"
#include "gateway/policy.h"
#include "gateway/targets.h"
#include "oidc/config.h"

using namespace castgate;

TEST_CASE("configuration reader: wrong types and malformed numbers are clear errors") {
  // A number too large for a double was once an uncaught nlohmann out_of_range (found by fuzzing).
  CHECK_THROWS_WITH_AS(parse_config_json(R"({"targets": [], "x": 23e2222})", "t.json"),
                       doctest::Contains("t.json: not valid JSON: "), std::runtime_error);
  CHECK_THROWS_WITH_AS(parse_config_json("{", "t.json"),
                       doctest::Contains("t.json: not valid JSON: "), std::runtime_error);

  nlohmann::json j = nlohmann::json::parse(
      R"({"s": 1, "l": ["a", 2], "b": "yes", "n": 4294967318, "f": 2.5, "d": 90, "a": {}})");
  ConfigObject c(j, "f: x");
  CHECK_THROWS_WITH(c.str("s"), "f: x: s must be a string");
  CHECK(c.str("missing", "dflt") == "dflt");
  CHECK_THROWS_WITH(c.list("l"), "f: x: l must hold strings");
  CHECK_THROWS_WITH(c.list("s"), "f: x: s must be a list");
  CHECK_THROWS_WITH(c.boolean("b", false), "f: x: b must be true or false");
  // 4294967318 must not wrap to 22.
  CHECK_THROWS_WITH(c.integer("n", 22, 1, 65535), "f: x: n must be a whole number from 1 to 65535");
  CHECK_THROWS(c.integer("f", 22, 1, 65535));
  CHECK(c.integer("missing", 22, 1, 65535) == 22);
  CHECK_THROWS_WITH(c.duration("d", std::chrono::seconds(1)),
                    "f: x: d must be a duration like \"90s\"");
  CHECK_THROWS_WITH(c.array("a"), "f: x: a must be a list");
  CHECK_THROWS_WITH(c.allow_only({"s", "l"}), "f: x: unknown setting \"a\"");
  CHECK_THROWS_WITH(ConfigObject(j["l"], "f: y"), "f: y must be an object");
}

TEST_CASE("every configuration file refuses values of the wrong type with std::runtime_error") {
  const char* targets[] = {
      R"({"targets": [{"name": "a", "static_key": 5}]})",
      R"({"targets": [{"name": "a", "host": ["x"]}]})",
      R"({"targets": [{"name": "a", "certificate_validity": 600}]})",
      R"({"targets": [{"name": "a", "port": 4294967318}]})",
      R"({"targets": [{"name": 7}]})",
      R"({"targets": [5]})",
      R"({"targets": {"name": "a"}})",
      R"({"targets": [{"name": "a", "port": 1e999}]})",
  };
  for (const char* t : targets) {
    CAPTURE(t);
    CHECK_THROWS_AS(Targets::parse(t, "t"), std::runtime_error);
  }
  CHECK_THROWS_WITH(Targets::parse(R"({"targets": [{"name": "a", "static_key": 5}]})", "t"),
                    "t: target a: static_key must be a string");
  const char* policies[] = {
      R"({"rules": [{"name": 1, "groups": ["g"], "targets": ["a"], "logins": ["b"]}]})",
      R"({"rules": [{"groups": ["g"], "targets": ["a"], "logins": ["b"], "pty": "yes"}]})",
      R"({"rules": [{"groups": "g", "targets": ["a"], "logins": ["b"]}]})",
      R"({"rules": ["x"]})",
  };
  for (const char* p : policies) {
    CAPTURE(p);
    CHECK_THROWS_AS(Policy::parse(p, "p"), std::runtime_error);
  }
  const char* alerts[] = {
      R"([{"name": 1, "pattern": "x"}])",
      R"([{"name": "n", "pattern": "x", "severity": 3}])",
      R"([{"name": "n"}])",
      R"([7])",
  };
  for (const char* a : alerts) {
    CAPTURE(a);
    CHECK_THROWS_AS(asciicast::AlertRules::parse(a, "a"), std::runtime_error);
  }
  const char* oidc[] = {
      R"({"device_flow": {"qr": "yes"}})",
      R"({"provider": 5})",
      R"({"workload_issuers": [{"name": "gh", "issuer": "https://t", "audience": "c",
          "rules": [5]}]})",
      R"({"workload_issuers": {"name": "gh"}})",
  };
  for (const char* o : oidc) {
    CAPTURE(o);
    CHECK_THROWS_AS(oidc::OidcConfig::parse(o, "o"), std::runtime_error);
  }
}

TEST_CASE("oidc settings: the device-flow deadline and the Okta groups scope") {
  using std::chrono::seconds;
  // Unset: castgate waits as long as the provider's code lives (up to 30 minutes), not 5.
  auto defaults = oidc::OidcConfig::parse(R"({})", "o");
  CHECK_FALSE(defaults.device.timeout.has_value());
  CHECK(defaults.device.longest_wait() == seconds(1800));
  auto shorter = oidc::OidcConfig::parse(R"({"device_flow": {"timeout": "2m"}})", "o");
  CHECK(shorter.device.longest_wait() == seconds(120));
  CHECK_THROWS_AS(oidc::OidcConfig::parse(R"({"device_flow": {"timeout": "5s"}})", "o"),
                  std::runtime_error);
  CHECK_THROWS_AS(oidc::OidcConfig::parse(R"({"device_flow": {"timeout": "2h"}})", "o"),
                  std::runtime_error);
  auto okta = oidc::OidcConfig::parse(
      R"({"provider": {"preset": "okta", "issuer": "https://x.okta.com", "client_id": "c"}})", "o");
  const auto& scopes = okta.provider->scopes;
  CHECK(std::find(scopes.begin(), scopes.end(), "groups") != scopes.end());
  auto entra = oidc::OidcConfig::parse(
      R"({"provider": {"preset": "entra", "tenant": "t", "client_id": "c"}})", "o");
  CHECK(std::find(entra.provider->scopes.begin(), entra.provider->scopes.end(), "groups") ==
        entra.provider->scopes.end());  // Entra has no groups scope: an app setting sends them
}
