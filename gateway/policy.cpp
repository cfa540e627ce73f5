#include "gateway/policy.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <stdexcept>

#include "common/json_config.h"
#include "common/text.h"

namespace castgate {

namespace {

constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr const char* kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

int64_t day_of(int64_t local) {  // days since 1970-01-01, which was a Thursday
  return local >= 0 ? local / 86400 : (local - 86399) / 86400;
}
int weekday(int64_t day) {
  return static_cast<int>(((day % 7) + 7 + 4) % 7);
}

// "08:00" or "08:00:30" (seconds after midnight); "24:00" only where `end`.
int time_of_day(const std::string& text, bool end, const std::string& where) {
  int h = 0, m = 0, sec = 0;
  char extra = 0;
  int n = std::sscanf(text.c_str(), "%2d:%2d:%2d%c", &h, &m, &sec, &extra);
  bool ok = (n == 2 && text.size() == 5) || (n == 3 && text.size() == 8);
  ok = ok && h >= 0 && m >= 0 && m < 60 && sec >= 0 && sec < 60 &&
       (h < 24 || (end && h == 24 && m == 0 && sec == 0));
  if (!ok) throw std::runtime_error(where + ": a time of day is HH:MM or HH:MM:SS, not " + text);
  return h * 3600 + m * 60 + sec;
}

std::string clock_text(int s) {
  char buf[16];
  if (s % 60)
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02d:%02d", s / 3600, s / 60 % 60);
  return buf;
}

Hours read_hours(const nlohmann::json& j, const std::string& where) {
  ConfigObject c(j, where);
  c.allow_only({"days", "from", "to", "time_zone"});
  Hours h;
  auto days = c.list("days", {"mon", "tue", "wed", "thu", "fri", "sat", "sun"});
  for (const auto& d : days) {
    auto it = std::find(std::begin(kDays), std::end(kDays), d);
    if (it == std::end(kDays))
      throw std::runtime_error(where + ": days are sun, mon, tue, wed, thu, fri, sat, not " + d);
    h.days |= static_cast<uint8_t>(1u << (it - std::begin(kDays)));
  }
  if (!c.has("from") || !c.has("to"))
    throw std::runtime_error(where + ": from and to are required");
  h.from = time_of_day(c.str("from"), false, where);
  h.to = time_of_day(c.str("to"), true, where);
  if (h.from == h.to) throw std::runtime_error(where + ": from and to are the same time");
  h.zone = TimeZone::load(c.str("time_zone", "UTC"));
  return h;
}

}  // namespace

Policy Policy::parse(std::string_view json_text, const std::string& origin) {
  nlohmann::json doc = parse_config_json(json_text, origin);
  if (!doc.is_object() || !doc.contains("rules"))
    throw std::runtime_error(origin + ": expected {\"rules\": [...]}");
  ConfigObject top(doc, origin);
  top.allow_only({"rules"});
  Policy policy;
  size_t index = 0;
  for (auto& r : top.array("rules")) {
    ConfigObject c(r, origin + ": rules[" + std::to_string(index) + "]");
    c.allow_only({"name", "identities", "emails", "groups", "kinds", "targets", "logins",
                  "port_forwarding", "pty", "mfa", "max_session_length", "hours",
                  "binary_streams"});
    Rule rule;
    rule.name = c.str("name", "rule-" + std::to_string(index++));
    rule.who = IdentitySelector::read(c);
    rule.targets = c.list("targets");
    rule.logins = c.list("logins");
    if (rule.who.names_nobody())
      throw std::runtime_error(c.where() + ": name at least one of identities, emails, groups");
    if (rule.targets.empty()) throw std::runtime_error(c.where() + ": targets is required");
    if (rule.logins.empty()) throw std::runtime_error(c.where() + ": logins is required");
    rule.port_forwarding = c.boolean("port_forwarding", rule.port_forwarding);
    rule.pty = c.boolean("pty", rule.pty);
    rule.mfa = c.boolean("mfa", rule.mfa);
    std::string streams = c.str("binary_streams", "summary");
    if (streams != "summary" && streams != "full")
      throw std::runtime_error(c.where() + ": binary_streams must be \"summary\" or \"full\"");
    rule.full_binary_streams = streams == "full";
    rule.max_session = c.duration("max_session_length", rule.max_session);
    if (rule.max_session.count() > 0 && rule.max_session < std::chrono::seconds(2))
      throw std::runtime_error(c.where() + ": max_session_length must be at least 2s");
    if (c.has("hours")) rule.hours = read_hours(r["hours"], c.where() + ": hours");
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

bool Hours::contains(std::chrono::sys_seconds t) const {
  int64_t local = zone.local_seconds(t);
  int64_t day = day_of(local);
  int64_t sec = local - day * 86400;
  auto on = [&](int64_t d) { return (days >> weekday(d)) & 1; };
  if (from < to) return on(day) && sec >= from && sec < to;
  return (on(day) && sec >= from) || (on(day - 1) && sec < to);
}

std::chrono::sys_seconds Hours::window_end(std::chrono::sys_seconds t) const {
  for (int i = 0; i < 8 && contains(t); ++i) {  // a week of windows that touch, at most
    int64_t local = zone.local_seconds(t);
    int64_t day = day_of(local);
    int64_t sec = local - day * 86400;
    int64_t end_day = (from > to && sec >= from) ? day + 1 : day;
    t = zone.from_local(end_day * 86400 + to);
  }
  return t;
}

std::string Hours::describe() const {
  std::string d;
  if (days == 0x7f) {
    d = "every day";
  } else if (days == 0x3e) {
    d = "Mon-Fri";
  } else {
    for (int i = 1; i <= 7; ++i)
      if ((days >> (i % 7)) & 1) d += (d.empty() ? "" : ",") + std::string(kDayNames[i % 7]);
  }
  return d + " " + clock_text(from) + "-" + clock_text(to) + " " + zone.name();
}

PolicyDecision Policy::evaluate(const Identity& identity, std::string_view target,
                                std::string_view login, std::chrono::sys_seconds now) const {
  PolicyDecision d;
  bool subject_seen = false, target_seen = false;
  std::string mfa_rule;  // a rule that would have granted access after a multi-factor sign-in
  const Rule* hours_rule = nullptr;  // one that would have granted it within its hours
  bool unlimited = false;
  for (const auto& rule : rules_) {
    if (!rule.who.matches(identity)) continue;
    subject_seen = true;
    if (!any_glob(rule.targets, target)) continue;
    target_seen = true;
    if (!any_glob(rule.logins, login)) continue;
    if (rule.mfa && !identity.mfa) {
      if (mfa_rule.empty()) mfa_rule = rule.name;
      continue;
    }
    if (rule.hours && !rule.hours->contains(now)) {
      if (!hours_rule) hours_rule = &rule;
      continue;
    }
    d.allowed = true;
    // Until when this rule grants it.
    std::optional<std::chrono::sys_seconds> until;
    std::string because;
    asciicast::EndReason code = asciicast::EndReason::kMaxSessionLength;
    if (rule.hours) {
      until = rule.hours->window_end(now);
      because = "policy rule " + rule.name + " allows access " + rule.hours->describe();
      code = asciicast::EndReason::kOutsideHours;
    }
    if (rule.max_session.count() > 0 && (!until || now + rule.max_session < *until)) {
      until = now + rule.max_session;
      because = "policy rule " + rule.name + " allows sessions of at most " +
                duration_text(rule.max_session);
      code = asciicast::EndReason::kMaxSessionLength;
    }
    if (!until) {
      unlimited = true;
    } else if (!d.ends_at || *until > *d.ends_at) {
      d.ends_at = until;
      d.ends_because = because;
      d.ends_code = code;
    }
    d.port_forwarding = d.port_forwarding || rule.port_forwarding;
    d.pty = d.pty || rule.pty;
    d.full_binary_streams = d.full_binary_streams || rule.full_binary_streams;
    d.rules.push_back(rule.name);
  }
  if (unlimited) {
    d.ends_at.reset();
    d.ends_because.clear();
  }
  if (!d.allowed) {
    if (!mfa_rule.empty()) {
      d.mfa_missing = true;
      d.reason = "policy rule " + mfa_rule +
                 " requires a multi-factor sign-in, and this sign-in did not use one (" +
                 identity.describe_factors() + "): sign in again with a second factor";
    } else if (hours_rule) {
      d.outside_hours = true;
      d.reason = "policy rule " + hours_rule->name + " allows access only " +
                 hours_rule->hours->describe();
    } else if (!subject_seen) {
      d.reason = "no policy rule grants this identity any access";
    } else if (!target_seen) {
      d.reason = "no policy rule grants access to target " + std::string(target);
    } else {
      d.reason = "no policy rule allows login " + std::string(login) + " on " + std::string(target);
    }
  }
  return d;
}

}  // namespace castgate
