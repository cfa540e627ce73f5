#include <doctest/doctest.h>

#include <stdexcept>

#include "common/text.h"
#include "common/time_zone.h"
#include "gateway/config.h"
#include "gateway/identity_keys.h"
#include "gateway/known_hosts.h"
#include "gateway/policy.h"
#include "gateway/router.h"
#include "gateway/ssh_wire.h"
#include "gateway/targets.h"

using namespace castgate;

namespace {
const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlgYTN/KSaaVvn4jgsl2ssWFbSWe1DceErlXfeBK+n3";
std::string blob() {
  auto l = ssh::parse_public_key(kKey);
  REQUIRE(l);
  return l->blob;
}
}  // namespace

TEST_CASE("identities file maps keys to identities") {
  auto ids =
      IdentityKeys::parse(std::string("# comment\n\nidentity=\"alice\",email=\"alice@example.com\","
                                      "groups=\"ops, dba\",kind=human ") +
                              kKey + " laptop\n",
                          "ids");
  const Identity* a = ids.find(blob());
  REQUIRE(a);
  CHECK(a->name == "alice");
  CHECK(a->subject == "alice");
  CHECK(a->groups == std::vector<std::string>{"ops", "dba"});
  CHECK(a->kind == IdentityKind::kHuman);
  CHECK_FALSE(ids.find("nope"));
  CHECK_THROWS_WITH_AS(IdentityKeys::parse(std::string("email=\"x\" ") + kKey, "ids"),
                       "ids:1: identity=\"...\" is required", std::runtime_error);
  CHECK_THROWS_AS(IdentityKeys::parse(std::string("identity=\"a\",kind=robot ") + kKey, "ids"),
                  std::runtime_error);
  CHECK_THROWS_AS(IdentityKeys::parse("identity=\"a\" ssh-ed25519 AAAA!!", "ids"),
                  std::runtime_error);
  CHECK_THROWS_AS(IdentityKeys::parse(
                      std::string("identity=\"a\" ") + kKey + "\nidentity=\"b\" " + kKey, "ids"),
                  std::runtime_error);
}

TEST_CASE("policy grants by identity, email or group, target and login") {
  auto p = Policy::parse(R"({"rules": [
      {"name": "ops", "groups": ["ops"], "targets": ["db*.int"], "logins": ["ubuntu"]},
      {"name": "fwd", "identities": ["bob"], "targets": ["web1"], "logins": ["*"], "port_forwarding": true, "pty": false}
    ]})",
                         "policy");
  Identity alice;
  alice.subject = "alice";
  alice.groups = {"ops"};
  auto d = p.evaluate(alice, "db1.int", "ubuntu");
  CHECK(d.allowed);
  CHECK(d.pty);
  CHECK_FALSE(d.port_forwarding);
  CHECK(d.rules == std::vector<std::string>{"ops"});
  CHECK_FALSE(p.evaluate(alice, "db1.int", "root").allowed);
  CHECK(p.evaluate(alice, "db1.int", "root").reason ==
        "no policy rule allows login root on db1.int");
  CHECK_FALSE(p.evaluate(alice, "web1", "ubuntu").allowed);
  Identity bob;
  bob.subject = "bob";
  auto b = p.evaluate(bob, "web1", "www");
  CHECK(b.allowed);
  CHECK(b.port_forwarding);
  CHECK_FALSE(b.pty);
  Identity eve;
  eve.subject = "eve";
  CHECK(p.evaluate(eve, "db1.int", "ubuntu").reason ==
        "no policy rule grants this identity any access");
  CHECK_THROWS_AS(
      Policy::parse(
          R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"], "typo": 1}]})", "p"),
      std::runtime_error);
  CHECK_THROWS_AS(Policy::parse(R"({"rules": [{"targets": ["a"], "logins": ["b"]}]})", "p"),
                  std::runtime_error);
  CHECK_THROWS_AS(Policy::parse("{not json", "p"), std::runtime_error);
}

TEST_CASE("binary streams are summarised unless a granting rule asks for them in full") {
  auto p = Policy::parse(R"({"rules": [
      {"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": ["ubuntu"]},
      {"name": "pci", "groups": ["pci"], "targets": ["card*"], "logins": ["*"], "binary_streams": "full"},
      {"name": "explicit", "groups": ["dev"], "targets": ["*"], "logins": ["*"], "binary_streams": "summary"}
    ]})",
                         "policy");
  Identity alice;
  alice.subject = "alice";
  alice.groups = {"ops", "pci"};
  CHECK_FALSE(p.evaluate(alice, "db1", "ubuntu").full_binary_streams);
  // Both rules grant card1 as ubuntu; one of them wants every byte: every byte it is.
  CHECK(p.evaluate(alice, "card1", "ubuntu").full_binary_streams);
  alice.groups = {"dev"};
  CHECK_FALSE(p.evaluate(alice, "card1", "ubuntu").full_binary_streams);
  CHECK_THROWS_WITH_AS(
      Policy::parse(R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"],
                                          "binary_streams": "none"}]})",
                    "p"),
      doctest::Contains("binary_streams must be"), std::runtime_error);
  CHECK_THROWS_AS(Policy::parse(R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"],
                                     "binary_streams": true}]})",
                                "p"),
                  std::runtime_error);
}

TEST_CASE("targets and known hosts") {
  auto t = Targets::parse(
      R"({"targets": [{"name": "db1.int", "host": "127.0.0.1", "port": 2222}]})", "t");
  const Target* db = t.find("db1.int");
  REQUIRE(db);
  CHECK(db->env_allowed("LANG"));
  CHECK(db->env_allowed("LC_ALL"));
  CHECK_FALSE(db->env_allowed("LD_PRELOAD"));
  CHECK(db->known_hosts_names() == std::vector<std::string>{"[db1.int]:2222", "[127.0.0.1]:2222"});
  CHECK_FALSE(t.find("db2.int"));
  CHECK_THROWS_AS(Targets::parse(R"({"targets": [{"name": "a b"}]})", "t"), std::runtime_error);
  CHECK_THROWS_AS(Targets::parse(R"({"targets": [{"name": "a", "port": 70000}]})", "t"),
                  std::runtime_error);

  std::vector<std::string> warnings;
  auto kh = KnownHosts::parse(
      std::string("# pinned\n[127.0.0.1]:2222 ") + kKey + "\n@cert-authority *.int " + kKey +
          "\n|1|QApKkg32D7JfeYe4tDWCALvsDtw=|nbQbThI5C1eMlPi3G7gS2zEUmqs= " + kKey + "\n",
      "kh", &warnings);
  CHECK(warnings.size() == 1);
  CHECK(kh.check(db->known_hosts_names(), blob()) == HostKeyCheck::kMatch);
  CHECK(kh.check({"[db1.int]:2222"}, blob()) == HostKeyCheck::kMatch);  // the hashed entry
  CHECK(kh.check({"[db1.int]:2222"}, "other") == HostKeyCheck::kMismatch);
  CHECK(kh.check({"other.int"}, blob()) == HostKeyCheck::kUnknown);
  CHECK(kh.key_types_for(db->known_hosts_names()) == std::vector<std::string>{"ssh-ed25519"});
  auto revoked = KnownHosts::parse(std::string("@revoked * ") + kKey + "\n", "kh");
  CHECK(revoked.check({"x"}, blob()) == HostKeyCheck::kRevoked);
  CHECK_THROWS_AS(KnownHosts::parse("host ssh-ed25519\n", "kh"), std::runtime_error);
}

TEST_CASE("SSH user names route to login and target") {
  std::string login, target;
  split_user("ubuntu@db1.int", login, target);
  CHECK(login == "ubuntu");
  CHECK(target == "db1.int");
  split_user("alice", login, target);
  CHECK(login == "alice");
  CHECK(target.empty());
  auto l = parse_listen("127.0.0.1:2222=db1.int");
  CHECK(l.address == "127.0.0.1");
  CHECK(l.port == 2222);
  CHECK(l.target == "db1.int");
  CHECK(parse_listen("[::1]:22").address == "::1");
  CHECK_THROWS_AS(parse_listen("nohost"), std::runtime_error);
}

TEST_CASE("policy rules with mfa grant only to a multi-factor sign-in") {
  auto p = Policy::parse(R"({"rules": [
      {"name": "prod-admin", "groups": ["ops"], "targets": ["prod*"], "logins": ["root"], "mfa": true},
      {"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": ["ubuntu"], "port_forwarding": true}
    ]})",
                         "policy");
  Identity alice;
  alice.subject = "oidc:00u1";
  alice.name = "alice";
  alice.groups = {"ops"};
  alice.auth_method = "oidc-device";
  alice.amr = {"pwd"};
  auto d = p.evaluate(alice, "prod1", "root");
  CHECK_FALSE(d.allowed);
  CHECK(d.mfa_missing);
  CHECK(d.reason ==
        "policy rule prod-admin requires a multi-factor sign-in, and this sign-in did not use "
        "one (amr: pwd): sign in again with a second factor");
  // Another rule still grants what it grants, without a second factor.
  CHECK(p.evaluate(alice, "prod1", "ubuntu").allowed);
  alice.mfa = true;
  alice.amr = {"pwd", "mfa", "otp"};
  d = p.evaluate(alice, "prod1", "root");
  CHECK(d.allowed);
  CHECK_FALSE(d.port_forwarding);  // only the mfa rule applies to root
  // A key never counts as a second factor, and is told so.
  Identity key;
  key.subject = "alice";
  key.groups = {"ops"};
  key.auth_method = "publickey";
  CHECK(p.evaluate(key, "prod1", "root").reason.find("(signed in with publickey)") !=
        std::string::npos);
  // A refusal for any other reason is not blamed on the factors.
  CHECK_FALSE(p.evaluate(key, "prod1", "postgres").mfa_missing);
  CHECK_THROWS_AS(Policy::parse(R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"],
                                   "mfa": "yes"}]})",
                                "p"),
                  std::runtime_error);
}

TEST_CASE("policy: the longest session the granting rules allow") {
  auto p = Policy::parse(R"({"rules": [
      {"name": "contractors", "groups": ["contractors"], "targets": ["*"], "logins": ["app"],
       "max_session_length": "2h"},
      {"name": "oncall", "groups": ["oncall"], "targets": ["*"], "logins": ["app"],
       "max_session_length": "12h"},
      {"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": ["app"]}
    ]})",
                         "policy");
  std::chrono::sys_seconds now{std::chrono::seconds(1'780'000'000)};
  Identity c;
  c.subject = "c";
  c.groups = {"contractors"};
  auto d = p.evaluate(c, "web1", "app", now);
  REQUIRE(d.ends_at);
  CHECK(*d.ends_at == now + std::chrono::hours(2));
  CHECK(d.ends_because == "policy rule contractors allows sessions of at most 2h");
  CHECK(to_string(d.ends_code) == "max_session_length");
  c.groups = {"contractors", "oncall"};  // rules are alternatives: the most generous applies
  d = p.evaluate(c, "web1", "app", now);
  CHECK(*d.ends_at == now + std::chrono::hours(12));
  c.groups = {"contractors", "ops"};  // a rule without a limit grants without one
  CHECK_FALSE(p.evaluate(c, "web1", "app", now).ends_at);
  CHECK_THROWS_AS(Policy::parse(R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"],
                                   "max_session_length": "1s"}]})",
                                "p"),
                  std::runtime_error);
  CHECK_THROWS_AS(Policy::parse(R"({"rules": [{"groups": ["x"], "targets": ["a"], "logins": ["b"],
                                   "max_session_length": "8 hours"}]})",
                                "p"),
                  std::runtime_error);
  CHECK(duration_text(std::chrono::hours(8)) == "8h");
  CHECK(duration_text(std::chrono::seconds(300)) == "5m");
  CHECK(duration_text(std::chrono::seconds(90)) == "90s");
  CHECK(duration_text(std::chrono::seconds(0)) == "0s");
}

namespace {
std::chrono::sys_seconds utc(int y, int mo, int d, int h, int mi) {
  using namespace std::chrono;
  return sys_days(year(y) / month(static_cast<unsigned>(mo)) / day(static_cast<unsigned>(d))) +
         hours(h) + minutes(mi);
}
}  // namespace

TEST_CASE("policy: hours in a time zone, daylight saving included") {
  auto p = Policy::parse(R"({"rules": [
      {"name": "office", "groups": ["staff"], "targets": ["*"], "logins": ["app"],
       "hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00",
                 "time_zone": "Europe/Berlin"}},
      {"name": "night", "groups": ["oncall"], "targets": ["*"], "logins": ["app"],
       "hours": {"days": ["fri"], "from": "22:00", "to": "06:00", "time_zone": "UTC"}},
      {"name": "always", "groups": ["allday"], "targets": ["*"], "logins": ["app"],
       "hours": {"from": "00:00", "to": "24:00"}}
    ]})",
                         "policy");
  Identity s;
  s.subject = "s";
  s.groups = {"staff"};
  // Wednesday 2026-07-15: Berlin is UTC+2 (summer). 07:30 UTC is 09:30 there.
  auto d = p.evaluate(s, "web1", "app", utc(2026, 7, 15, 7, 30));
  CHECK(d.allowed);
  REQUIRE(d.ends_at);
  CHECK(*d.ends_at == utc(2026, 7, 15, 16, 0));  // 18:00 Berlin
  CHECK(to_string(d.ends_code) == "outside_hours");
  CHECK(d.ends_because == "policy rule office allows access Mon-Fri 08:00-18:00 Europe/Berlin");
  // 05:30 UTC is 07:30 in Berlin: before the window.
  d = p.evaluate(s, "web1", "app", utc(2026, 7, 15, 5, 30));
  CHECK_FALSE(d.allowed);
  CHECK(d.outside_hours);
  CHECK(d.reason == "policy rule office allows access only Mon-Fri 08:00-18:00 Europe/Berlin");
  // In January Berlin is UTC+1: 07:30 UTC is 08:30 there, inside; the end is 17:00 UTC.
  d = p.evaluate(s, "web1", "app", utc(2026, 1, 14, 7, 30));
  CHECK(d.allowed);
  CHECK(*d.ends_at == utc(2026, 1, 14, 17, 0));
  CHECK_FALSE(p.evaluate(s, "web1", "app", utc(2026, 7, 18, 9, 0)).allowed);  // Saturday
  // A window past midnight: Friday 22:00 to Saturday 06:00.
  Identity o;
  o.subject = "o";
  o.groups = {"oncall"};
  CHECK(p.evaluate(o, "web1", "app", utc(2026, 7, 17, 23, 0)).allowed);  // Friday night
  d = p.evaluate(o, "web1", "app", utc(2026, 7, 18, 5, 0));              // Saturday early
  CHECK(d.allowed);
  CHECK(*d.ends_at == utc(2026, 7, 18, 6, 0));
  CHECK_FALSE(p.evaluate(o, "web1", "app", utc(2026, 7, 18, 7, 0)).allowed);
  CHECK_FALSE(p.evaluate(o, "web1", "app", utc(2026, 7, 16, 23, 0)).allowed);  // Thursday
  // Windows that touch are one: every day all day never ends a session at midnight.
  Identity a;
  a.subject = "a";
  a.groups = {"allday"};
  d = p.evaluate(a, "web1", "app", utc(2026, 7, 15, 23, 59));
  CHECK(*d.ends_at > utc(2026, 7, 21, 0, 0));
  for (const char* bad : {R"({"from": "8:00", "to": "18:00"})", R"({"from": "08:00"})",
                          R"({"from": "08:00", "to": "08:00"})",
                          R"({"from": "08:00", "to": "18:00", "days": ["monday"]})",
                          R"({"from": "08:00", "to": "18:00", "time_zone": "Mars/Olympus"})",
                          R"({"from": "08:00", "to": "18:00", "time_zone": "../../etc/passwd"})",
                          R"({"from": "24:00", "to": "18:00"})"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Policy::parse(std::string(R"({"rules": [{"groups": ["x"], "targets": ["a"],
                                                   "logins": ["b"], "hours": )") +
                                      bad + "}]}",
                                  "p"),
                    std::runtime_error);
  }
}

TEST_CASE("time zones: zoneinfo files read strictly") {
  auto berlin = TimeZone::load("Europe/Berlin");
  CHECK(berlin.offset_at(utc(2026, 7, 1, 12, 0)) == std::chrono::hours(2));
  CHECK(berlin.offset_at(utc(2026, 12, 1, 12, 0)) == std::chrono::hours(1));
  auto kathmandu = TimeZone::load("Asia/Kathmandu");
  CHECK(kathmandu.offset_at(utc(2026, 7, 1, 12, 0)) == std::chrono::minutes(5 * 60 + 45));
  CHECK(TimeZone::utc().offset_at(utc(2026, 7, 1, 12, 0)).count() == 0);
  std::string bytes = read_file("/usr/share/zoneinfo/Europe/Berlin");
  // Cut anywhere before the footer (a TZ string, not read), the file is refused.
  for (size_t cut : {size_t{0}, size_t{10}, size_t{44}, bytes.size() / 2, bytes.size() - 40}) {
    CAPTURE(cut);
    CHECK_THROWS_AS(TimeZone::parse(bytes.substr(0, cut), "cut"), std::runtime_error);
  }
  CHECK(TimeZone::parse(bytes, "whole").offset_at(utc(2026, 7, 1, 0, 0)) == std::chrono::hours(2));
  std::string evil = bytes;
  evil[4] = '1';  // not a version (0, then '2' and up)
  CHECK_THROWS_AS(TimeZone::parse(evil, "evil"), std::runtime_error);
  CHECK_THROWS_AS(TimeZone::load("Etc/../../../etc/passwd"), std::runtime_error);
}
