// Who may reach which target as which login, and whether they may forward ports.
//
// JSON: {"rules": [{"name": "ops-db", "groups": ["ops"], "identities": ["alice"],
//                   "emails": ["bob@example.com"], "kinds": ["human"],
//                   "targets": ["db*.int"], "logins": ["ubuntu"],
//                   "port_forwarding": false, "pty": true, "mfa": true,
//                   "max_session_length": "8h", "binary_streams": "summary"}]}
// A rule applies when the identity matches one of its identities/emails/groups (glob patterns),
// its kind is listed (default: any), and both the target and the login match. Access is granted
// if any rule applies; anything else is refused. "identities" match the issuer-qualified subject
// ("alice" for a registered key, "oidc:<sub>", "cert:<ca>:<key id>", "<issuer>:<sub>") or the
// name an administrator assigned (a registered key's, a workload rule's), never a display name;
// "emails" match only an email its issuer verified (see common/identity.h). A rule with
// "mfa": true grants access only to an identity whose sign-in used several factors
// (Identity::mfa: an OIDC sign-in whose token says so; never a key, certificate or workload).
// "binary_streams": "full" records binary data on exec channels without a terminal byte for byte
// (escaped); "summary", the default, records it as stream summaries (asciicast/stream_summary.h).
// When several rules grant a session and one of them says "full", it is recorded in full.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/end_reason.h"
#include "common/identity.h"
#include "common/time_zone.h"
#include "gateway/identity_selector.h"

namespace castgate {

struct PolicyDecision {
  bool allowed = false;
  bool port_forwarding = false;
  bool pty = false;
  bool full_binary_streams = false;  // a granting rule says "binary_streams": "full"
  std::vector<std::string> rules;    // names of the rules that granted access
  std::string reason;                // why it was refused, for the user and the audit event
  // Refused, and a rule would have granted it after a multi-factor sign-in.
  bool mfa_missing = false;
  // Refused, and a rule would have granted it within its hours.
  bool outside_hours = false;
  // When the session must end: each granting rule grants until its hours close or its
  // max_session_length passes, and rules are alternatives, so the latest of those; none when a
  // granting rule has neither. `ends_because` says why, for the user and the record.
  std::optional<std::chrono::sys_seconds> ends_at;
  std::string ends_because;
  // castgate.end_reason at ends_at (meaningless without it): max_session_length or outside_hours
  asciicast::EndReason ends_code = asciicast::EndReason::kMaxSessionLength;
};

// A rule's hours: the days of the week and the time of day, in a time zone, when it grants.
// A window whose end is before its start runs past midnight (22:00-06:00 on Friday ends on
// Saturday morning).
struct Hours {
  uint8_t days = 0;      // bit 0 Sunday ... bit 6 Saturday
  int from = 0, to = 0;  // seconds after local midnight; `to` may be 86400 (24:00)
  TimeZone zone = TimeZone::utc();

  bool contains(std::chrono::sys_seconds t) const;
  // The end of the window that contains `t` (windows that follow without a gap are one).
  std::chrono::sys_seconds window_end(std::chrono::sys_seconds t) const;
  std::string describe() const;  // "Mon-Fri 08:00-18:00 Europe/Berlin"
};

class Policy {
 public:
  static Policy parse(std::string_view json_text, const std::string& origin);
  PolicyDecision evaluate(const Identity& identity, std::string_view target, std::string_view login,
                          std::chrono::sys_seconds now = std::chrono::floor<std::chrono::seconds>(
                              std::chrono::system_clock::now())) const;
  size_t size() const { return rules_.size(); }

 private:
  struct Rule {
    std::string name;
    IdentitySelector who;
    std::vector<std::string> targets, logins;
    bool port_forwarding = false;
    bool pty = true;
    bool mfa = false;                     // grants only to a multi-factor sign-in
    bool full_binary_streams = false;     // "binary_streams": "full"
    std::chrono::seconds max_session{0};  // 0: no limit
    std::optional<Hours> hours;           // none: at any time
  };
  std::vector<Rule> rules_;
};

}  // namespace castgate
