#include "player/catalog.h"

#include <simdjson.h>

#include <algorithm>

namespace castgate::player {
namespace {

using simdjson::dom::element;

std::string get_string(element e, const char* path) {
  std::string_view v;
  if (e.at_pointer(path).get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

int64_t get_int(element e, const char* path, int64_t fallback) {
  int64_t v;
  if (e.at_pointer(path).get_int64().get(v) == simdjson::SUCCESS) return v;
  return fallback;
}

}  // namespace

void Catalog::add_text(std::string_view text) {
  for (std::string_view needle : {"session.start", "session.end", "session.lost", "policy.denied"})
    for_each_line(text, needle, [&](std::string_view line, size_t) { add_line(line); });
}

void Catalog::add_line(std::string_view line) {
  StoredEvent e;
  thread_local simdjson::dom::parser parser;
  element root;
  if (!unwrap_line(line, e) ||
      parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS) {
    ++unreadable_;
    return;
  }
  std::string timestamp = get_string(root, "/@timestamp");
  std::string session = get_string(root, "/castgate/session");
  std::string end_reason = get_string(root, "/castgate/end_reason");
  std::string denial = get_string(root, "/castgate/denial");
  int64_t channels = get_int(root, "/castgate/channels", -1);
  std::string kind = get_string(root, "/castgate/identity/kind");
  std::string method = get_string(root, "/castgate/identity/auth_method");
  std::string target = get_string(root, "/destination/address");
  std::string action = get_string(root, "/event/action");
  int64_t duration = get_int(root, "/event/duration", -1);
  std::string source_ip = get_string(root, "/source/ip");
  std::string uid = get_string(root, "/user/id");
  std::string uname = get_string(root, "/user/name");
  std::string uemail = get_string(root, "/user/email");
  // The login on the target: destination.user.name (user.target.name in records before 2026-12).
  std::string login = get_string(root, "/destination/user/name");
  if (login.empty()) login = get_string(root, "/user/target/name");
  std::string reason = get_string(root, "/event/reason");
  int64_t lost_signal = get_int(root, "/castgate/lost/signal", -1);
  int64_t lost_status = get_int(root, "/castgate/lost/exit_status", -1);
  if (session.empty()) return;
  auto& s = by_id_[session];
  s.session = session;
  if (!uid.empty()) s.user_id = uid;
  if (!uname.empty()) s.user_name = uname;
  if (!uemail.empty()) s.user_email = uemail;
  if (!kind.empty()) s.kind = kind;
  if (!method.empty()) s.auth_method = method;
  if (!source_ip.empty()) s.source_ip = source_ip;
  if (!target.empty()) s.target = target;
  if (!login.empty()) s.login = login;
  if (action == "session.start" || action == "policy.denied") {
    if (s.start.empty() || timestamp < s.start) s.start = timestamp;
    if (action == "policy.denied") {
      s.denied = true;
      s.denial = denial;
    }
  } else if (action == "session.end") {
    s.end = timestamp;
    s.end_reason = end_reason;
    s.duration_ns = duration;
    if (channels >= 0) s.channels = static_cast<int>(channels);
  } else if (action == "session.lost") {
    s.end = timestamp;
    s.duration_ns = duration;
    s.lost = true;
    s.lost_reason = reason;
    s.lost_cause = lost_signal >= 0   ? "killed by signal " + std::to_string(lost_signal)
                   : lost_status >= 0 ? "exited with status " + std::to_string(lost_status)
                                      : "";
  }
}

std::vector<SessionSummary> Catalog::sessions(const CatalogFilter& f) const {
  std::vector<SessionSummary> out;
  for (const auto& [id, s] : by_id_) {
    if (s.start.empty()) continue;  // ended, but never started: a refused or failed connection
    if (s.denied && !f.include_denied) continue;
    if (!f.user.empty() && f.user != s.user_id && f.user != s.user_name && f.user != s.user_email)
      continue;
    if (!f.target.empty() && f.target != s.target) continue;
    // RFC 3339 in UTC with a fixed width compares as text.
    if (!f.until.empty() && s.start > f.until) continue;
    if (!f.since.empty() && !s.end.empty() && s.end < f.since) continue;
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const SessionSummary& a, const SessionSummary& b) { return a.start < b.start; });
  return out;
}

}  // namespace castgate::player
