#include "gateway/admission.h"

#include <doctest/doctest.h>

using namespace castgate;

TEST_CASE("a source is an IPv4 address or an IPv6 /64") {
  CHECK(source_block("192.0.2.7") == "192.0.2.7");
  CHECK(source_block("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
  CHECK(source_block("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64");
  CHECK(source_block("::ffff:192.0.2.7") == "192.0.2.7");
}

TEST_CASE("startups: a cap per source, random early drop between start and full") {
  int next_random = 0;
  StartupLimiter limiter({2, 50, 4, 3}, [&] { return next_random; });
  using V = StartupLimiter::Verdict;
  CHECK(limiter.admit("192.0.2.1") == V::kAdmitted);
  CHECK(limiter.admit("192.0.2.1") == V::kAdmitted);
  next_random = 99;  // above 50%: admitted between start and full
  CHECK(limiter.admit("192.0.2.1") == V::kAdmitted);
  CHECK(limiter.admit("192.0.2.1") == V::kSourceFull);  // its own cap of 3
  next_random = 0;                                      // below the drop probability
  CHECK(limiter.admit("192.0.2.2") == V::kEarlyDrop);
  next_random = 99;
  CHECK(limiter.admit("192.0.2.2") == V::kAdmitted);
  CHECK(limiter.admit("192.0.2.3") == V::kFull);  // four are signing in
  limiter.release("192.0.2.1");
  CHECK(limiter.unauthenticated() == 3);
  next_random = 74;
  CHECK(limiter.admit("192.0.2.3") == V::kEarlyDrop);  // 3 of 4: drop probability 75%
  next_random = 75;
  CHECK(limiter.admit("192.0.2.3") == V::kAdmitted);
  for (auto ip : {"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"}) limiter.release(ip);
  CHECK(limiter.unauthenticated() == 0);
  CHECK(limiter.sources() == 0);  // nothing kept for sources that left
  CHECK_THROWS(parse_startups("10:30"));
  CHECK_THROWS(parse_startups("10:130:20"));
  CHECK_THROWS(parse_startups("30:30:20"));
  CHECK(parse_startups("10:30:100").full == 100);
}

TEST_CASE("device sign-ins: a bucket per source, refilled over a minute, with a bounded table") {
  SourceRate rate(3, 4);
  auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) CHECK(rate.allow("192.0.2.1", t));
  CHECK_FALSE(rate.allow("192.0.2.1", t));
  CHECK(rate.allow("192.0.2.2", t));                             // another source is not affected
  CHECK(rate.allow("192.0.2.1", t + std::chrono::seconds(21)));  // one token back
  CHECK_FALSE(rate.allow("192.0.2.1", t + std::chrono::seconds(22)));
  // Many sources, each busy: the table stays bounded (4), the sources it holds keep their
  // limits, and the new ones share one bucket of 3.
  CHECK(rate.allow("198.51.100.1", t));
  CHECK(rate.allow("198.51.100.2", t));
  int allowed = 0;
  for (int i = 10; i < 100; ++i) allowed += rate.allow("198.51.100." + std::to_string(i), t);
  CHECK(allowed == 3);
  CHECK_FALSE(rate.allow("192.0.2.1", t + std::chrono::seconds(22)));  // not forgotten
  // A minute later every bucket is full again: those sources are forgotten, new ones get theirs.
  auto later = t + std::chrono::minutes(2);
  for (int i = 0; i < 3; ++i) CHECK(rate.allow("203.0.113.1", later));
  CHECK_FALSE(rate.allow("203.0.113.1", later));
}
