#include "oidc/claims.h"

#include <algorithm>

#include "common/text.h"

namespace castgate::oidc {

using nlohmann::json;

namespace {

std::string str(const json& c, const std::string& name) {
  return !name.empty() && c.contains(name) && c[name].is_string() ? c[name].get<std::string>() : "";
}

std::vector<std::string> list(const json& c, const std::string& name) {
  std::vector<std::string> out;
  if (name.empty() || !c.contains(name)) return out;
  if (c[name].is_string()) {
    out.push_back(c[name].get<std::string>());
  } else if (c[name].is_array()) {
    for (auto& v : c[name])
      if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool short_and_printable(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char ch : s)
    if (ch < 0x21 || ch > 0x7e) return false;
  return true;
}

bool listed(const std::vector<std::string>& values, const std::string& v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// amr and acr as the token states them (a few short printable values, recorded and shown to
// the user), and whether they make the sign-in multi-factor.
void read_factors(const MfaEvidence& mfa, const json& c, Identity& id) {
  constexpr size_t kMaxValues = 8, kMaxAmr = 32, kMaxAcr = 128;
  for (auto& v : list(c, "amr"))
    if (id.amr.size() < kMaxValues && short_and_printable(v, kMaxAmr)) id.amr.push_back(v);
  std::string acr = str(c, "acr");
  if (short_and_printable(acr, kMaxAcr)) id.acr = acr;
  id.mfa = mfa.enforced_by_provider || (!id.acr.empty() && listed(mfa.acr, id.acr)) ||
           std::any_of(id.amr.begin(), id.amr.end(),
                       [&](const std::string& v) { return listed(mfa.amr, v); });
}

}  // namespace

std::string_view to_string(MappingError e) {
  switch (e) {
    case MappingError::kMissingSubject:
      return "missing_subject";
    case MappingError::kGroupsOverage:
      return "groups_overage";
    case MappingError::kNoWorkloadRule:
      return "no_workload_rule";
  }
  return "unknown";
}

MappedIdentity map_person(const ProviderConfig& p, const json& c) {
  Identity id;
  id.kind = IdentityKind::kHuman;
  id.issuer = p.issuer;
  id.auth_method = "oidc-device";
  if (p.preset == Preset::kEntra) {
    // Entra: the object id is only unique within its tenant; tid:oid is the stable subject.
    std::string tid = str(c, "tid"),
                oid = str(c, p.claims.subject.empty() ? "oid" : p.claims.subject);
    if (tid.empty() || oid.empty()) {
      return fail(MappingError::kMissingSubject,
                  "the identity provider did not say who you are (tid/oid missing)");
    }
    id.subject = "oidc:" + tid + ":" + oid;
    // The groups overage: too many groups for the token, only a pointer to Graph instead.
    bool overage = (c.contains("_claim_names") && c["_claim_names"].is_object() &&
                    c["_claim_names"].contains("groups")) ||
                   (c.contains("hasgroups") && c["hasgroups"] == true);
    if (overage && p.claims.groups == "groups") {
      return fail(
          MappingError::kGroupsOverage,
          "your account is in too many groups for Entra ID to list them in the sign-in token, "
          "so castgate cannot check your access. Ask your administrator to grant access with "
          "app roles, or to emit only the groups assigned to the castgate application.");
    }
  } else {
    std::string sub = str(c, p.claims.subject);
    if (sub.empty()) {
      return fail(MappingError::kMissingSubject, "the identity provider did not say who you are (" +
                                                     p.claims.subject + " missing)");
    }
    id.subject = "oidc:" + sub;
  }
  read_factors(p.mfa, c, id);
  id.name = str(c, p.claims.name);
  if (id.name.empty()) id.name = str(c, "name");
  if (id.name.empty()) id.name = id.subject;
  id.email = str(c, p.claims.email);
  // Only an email the provider verified may grant access ("emails" rules). Okta and generic
  // providers say so in email_verified. Entra's email claim is not verified by default; it
  // counts only with the xms_edov optional claim (the email's domain is verified by its owner).
  // Its UPN in preferred_username is recorded for people to read, never trusted.
  auto flag = [&](const char* name) {
    return c.contains(name) && c[name].is_boolean() && c[name].get<bool>();
  };
  id.email_verified =
      !id.email.empty() && (p.preset == Preset::kEntra ? flag("xms_edov") : flag("email_verified"));
  if (id.email.empty() && p.preset == Preset::kEntra) {
    std::string upn = str(c, "preferred_username");
    if (upn.find('@') != std::string::npos) id.email = upn;
  }
  id.groups = list(c, p.claims.groups);
  return id;
}

MappedIdentity map_workload(const WorkloadIssuer& w, const json& c) {
  std::string sub = str(c, "sub");
  for (const auto& rule : w.rules) {
    if (!glob_match(rule.subject, sub)) continue;
    Identity id;
    id.subject = w.name + ":" + sub;
    id.assigned_name = rule.identity;
    id.name = rule.identity;
    id.groups = rule.groups;
    id.kind = IdentityKind::kWorkload;
    id.issuer = w.issuer;
    id.auth_method = "workload-jwt";
    return id;
  }
  return fail(MappingError::kNoWorkloadRule,
              "no rule of issuer " + w.name + " accepts this token's subject");
}

}  // namespace castgate::oidc
