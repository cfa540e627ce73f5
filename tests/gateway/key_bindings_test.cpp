// "Sign in once" key bindings, on a manual clock.
#include "gateway/key_bindings.h"

#include <doctest/doctest.h>

#include <string>

using namespace castgate;
using namespace std::chrono_literals;

namespace {

const auto kBindingsStart = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));

Identity person(const std::string& subject) {
  Identity id;
  id.subject = subject;
  return id;
}

}  // namespace

TEST_CASE("a key binding holds until its expiry, not at it") {
  ManualClock clock(kBindingsStart);
  KeyBindings bindings(clock);
  bindings.bind("key-a", person("oidc:alice"), clock.now() + 3600s, "192.0.2.7");
  std::chrono::system_clock::time_point until{};
  clock.advance(3599s);
  auto found = bindings.find("key-a", clock.now(), "192.0.2.7", &until);
  REQUIRE(found);
  CHECK(found->subject == "oidc:alice");
  CHECK(until == kBindingsStart + 3600s);
  CHECK_FALSE(bindings.find("key-a", clock.now(), "198.51.100.1"));  // another source
  CHECK_FALSE(bindings.find("key-b", clock.now(), "192.0.2.7"));     // another key
  clock.advance(1s);
  CHECK_FALSE(bindings.find("key-a", clock.now(), "192.0.2.7"));
  CHECK(bindings.size() == 0);  // an expired binding found is dropped
}

TEST_CASE("a key binding without a source holds from anywhere; forget ends it") {
  ManualClock clock(kBindingsStart);
  KeyBindings bindings(clock);
  bindings.bind("key-a", person("oidc:alice"), clock.now() + 60s, "");
  CHECK(bindings.find("key-a", clock.now(), "198.51.100.1"));
  bindings.forget("key-a");
  CHECK_FALSE(bindings.find("key-a", clock.now(), "198.51.100.1"));
}

TEST_CASE("a full table drops the bindings expired on its clock, or else all of them") {
  constexpr int kFull = 100000;  // key_bindings.cpp's limit
  ManualClock clock(kBindingsStart);
  KeyBindings bindings(clock);
  for (int i = 0; i < kFull; ++i)
    bindings.bind("key-" + std::to_string(i), person("p"), clock.now() + (i % 2 ? 600s : 60s), "");
  REQUIRE(bindings.size() == kFull);
  clock.advance(60s);  // the even half has expired
  bindings.bind("one-more", person("p"), clock.now() + 600s, "");
  CHECK(bindings.size() == kFull / 2 + 1);

  for (int i = 0; i < kFull / 2 - 1; ++i)
    bindings.bind("more-" + std::to_string(i), person("p"), clock.now() + 600s, "");
  REQUIRE(bindings.size() == kFull);
  bindings.bind("last", person("p"), clock.now() + 600s, "");  // none expired: all go
  CHECK(bindings.size() == 1);
  CHECK(bindings.find("last", clock.now(), ""));
}
