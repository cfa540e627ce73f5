#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "gateway/locks.h"

using namespace castgate;

namespace {
Identity person(std::string subject, std::vector<std::string> groups) {
  Identity id;
  id.subject = std::move(subject);
  id.groups = std::move(groups);
  return id;
}
}  // namespace

TEST_CASE("locks: by identity, group, target, or both; the first that matches") {
  auto locks = Locks::parse(R"({"locks": [
      {"groups": ["contractors"], "reason": "INC-4711"},
      {"targets": ["db*.int"], "reason": "maintenance"},
      {"identities": ["oidc:00u1"], "targets": ["prod*"], "reason": "alice off prod"}
    ]})",
                            "locks.json");
  CHECK(locks.size() == 3);
  auto carol = person("oidc:00u9", {"contractors"});
  REQUIRE(locks.match(carol, "web1") != nullptr);
  CHECK(locks.match(carol, "web1")->reason == "INC-4711");
  CHECK(locks.match(carol, "") != nullptr);  // a connection without a target (ProxyJump)
  auto bob = person("oidc:00u2", {"ops"});
  CHECK(locks.match(bob, "web1") == nullptr);
  CHECK(locks.match(bob, "db1.int")->reason == "maintenance");
  CHECK(locks.match(bob, "") == nullptr);
  auto alice = person("oidc:00u1", {"ops"});
  CHECK(locks.match(alice, "prod3")->reason == "alice off prod");
  CHECK(locks.match(alice, "web1") == nullptr);
  // The display name never matches: anyone can choose it at some identity providers.
  Identity mallory = person("oidc:00u6", {});
  mallory.name = "oidc:00u1";
  CHECK(locks.match(mallory, "prod3") == nullptr);
}

TEST_CASE("locks: a file that would lock everyone out must say so; mistakes are refused") {
  CHECK_THROWS_AS(Locks::parse(R"({"locks": [{"reason": "oops"}]})", "l"), std::runtime_error);
  auto all = Locks::parse(R"({"locks": [{"everyone": true, "reason": "incident"}]})", "l");
  CHECK(all.match(person("x", {}), "any") != nullptr);
  auto workloads =
      Locks::parse(R"({"locks": [{"kinds": ["workload"], "reason": "CI frozen"}]})", "l");
  Identity bot = person("ci:deploy", {});
  bot.kind = IdentityKind::kWorkload;
  CHECK(workloads.match(bot, "web1") != nullptr);
  CHECK(workloads.match(person("oidc:1", {}), "web1") == nullptr);
  CHECK(Locks::parse(R"({"locks": []})", "l").size() == 0);
  for (const char* bad : {R"({"locks": [{"groups": ["x"]}]})",  // no reason
                          R"({"locks": [{"groups": ["x"], "reason": "r", "typo": 1}]})",
                          R"({"locks": [{"groups": "x", "reason": "r", "kinds": ["robot"]}]})",
                          R"({"lock": []})", R"([])", "{not json"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Locks::parse(bad, "l"), std::runtime_error);
  }
  std::string long_reason(201, 'x');
  CHECK_THROWS_AS(
      Locks::parse(R"({"locks": [{"groups": ["x"], "reason": ")" + long_reason + "\"}]}", "l"),
      std::runtime_error);
}

TEST_CASE("locks: any spelling of a name locks, verified or not") {
  auto locks = Locks::parse(R"({"locks": [{"emails": ["alice@example.com"], "reason": "r"},
                                          {"groups": ["Contractors"], "reason": "c"}]})",
                            "l");
  Identity a = person("oidc:00u1", {});
  a.email = "Alice@Example.COM";  // as Entra spells it, and not verified (no xms_edov)
  CHECK(locks.match(a, "web1") != nullptr);
  CHECK(locks.match(person("x", {"contractors"}), "web1") != nullptr);
}
