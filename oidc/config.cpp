#include "oidc/config.h"

#include "common/identity.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/json_config.h"
#include "common/text.h"

namespace castgate::oidc {

using nlohmann::json;

std::string_view to_string(Preset p) {
  switch (p) {
    case Preset::kOkta:
      return "okta";
    case Preset::kEntra:
      return "entra";
    default:
      return "generic";
  }
}

namespace {

void check_algorithms(const std::vector<std::string>& algs, const std::string& where) {
  if (algs.empty()) throw std::runtime_error(where + ": algorithms may not be empty");
  for (auto& a : algs)
    if (a != "RS256" && a != "PS256" && a != "ES256" && a != "EdDSA")
      throw std::runtime_error(where + ": algorithm " + a +
                               " is not accepted (RS256, PS256, ES256, EdDSA)");
}

}  // namespace

OidcConfig OidcConfig::parse(std::string_view json_text, const std::string& origin) {
  json doc = parse_config_json(json_text, origin);
  ConfigObject top(doc, origin);
  top.allow_only({"provider", "device_flow", "key_binding_ttl", "key_binding_same_source",
                  "jwks_min_refresh", "workload_issuers", "ca_bundle"});
  OidcConfig c;
  c.ca_bundle = top.str("ca_bundle");
  c.key_binding_ttl = top.duration("key_binding_ttl", c.key_binding_ttl);
  c.key_binding_same_source = top.boolean("key_binding_same_source", c.key_binding_same_source);
  c.jwks_min_refresh = top.duration("jwks_min_refresh", c.jwks_min_refresh);
  if (doc.contains("provider")) {
    ConfigObject r(doc["provider"], origin + ": provider");
    r.allow_only({"preset", "issuer", "tenant", "client_id", "client_secret", "scopes",
                  "algorithms", "claims", "mfa", "clock_skew", "max_token_age"});
    ProviderConfig p;
    std::string preset = r.str("preset", "generic");
    if (preset == "okta") {
      p.preset = Preset::kOkta;
      // Okta's authorization servers release the groups claim only when `groups` is asked for.
      p.scopes.push_back("groups");
      // Okta's amr lists "mfa" after several factors; its acr names the assurance asked for
      // (Okta Identity Engine): two factors, phishing-resistant, hardware-protected.
      p.mfa.acr = {"urn:okta:loa:2fa:any", "phr", "phrh"};
    } else if (preset == "entra") {
      p.preset = Preset::kEntra;
      p.claims.subject = "oid";  // with tid: see the identity mapping
      // Entra's v1.0 tokens list "mfa" (or "ngcmfa", its equivalent for some credentials); its
      // v2.0 tokens have no amr: see MfaEvidence::enforced_by_provider.
      p.mfa.amr = {"mfa", "ngcmfa"};
    } else if (preset != "generic") {
      throw std::runtime_error(r.where() + ": preset must be okta, entra or generic");
    }
    p.tenant = r.str("tenant");
    p.issuer = r.str("issuer");
    if (p.preset == Preset::kEntra && p.issuer.empty()) {
      if (p.tenant.empty()) throw std::runtime_error(r.where() + ": entra needs the tenant id");
      p.issuer = "https://login.microsoftonline.com/" + p.tenant + "/v2.0";
    }
    if (p.issuer.empty()) throw std::runtime_error(r.where() + ": issuer is required");
    while (p.issuer.size() > 8 && p.issuer.back() == '/' && p.preset != Preset::kEntra)
      p.issuer.pop_back();
    p.client_id = r.str("client_id");
    if (p.client_id.empty()) throw std::runtime_error(r.where() + ": client_id is required");
    p.client_secret = r.str("client_secret");
    p.scopes = r.list("scopes", p.scopes);
    p.algorithms = r.list("algorithms", p.algorithms);
    check_algorithms(p.algorithms, r.where());
    p.clock_skew = r.duration("clock_skew", p.clock_skew);
    p.max_token_age = r.duration("max_token_age", p.max_token_age);
    if (r.has("claims")) {
      ConfigObject cl(doc["provider"]["claims"], r.where() + ": claims");
      cl.allow_only({"subject", "name", "email", "groups"});
      p.claims.subject = cl.str("subject", p.claims.subject);
      p.claims.name = cl.str("name", p.claims.name);
      p.claims.email = cl.str("email", p.claims.email);
      p.claims.groups = cl.str("groups", p.claims.groups);
    }
    if (r.has("mfa")) {
      ConfigObject m(doc["provider"]["mfa"], r.where() + ": mfa");
      m.allow_only({"amr", "acr", "enforced_by_provider"});
      p.mfa.amr = m.list("amr", p.mfa.amr);
      p.mfa.acr = m.list("acr", p.mfa.acr);
      p.mfa.enforced_by_provider = m.boolean("enforced_by_provider", false);
    }
    c.provider = std::move(p);
  }
  if (doc.contains("device_flow")) {
    ConfigObject r(doc["device_flow"], origin + ": device_flow");
    r.allow_only({"timeout", "prompt", "prompt_delay", "qr"});
    if (r.has("timeout")) {
      c.device.timeout = r.duration("timeout", std::chrono::seconds(0));
      if (*c.device.timeout < std::chrono::seconds(30) ||
          *c.device.timeout > DeviceFlowConfig::kLongestWait)
        throw std::runtime_error(origin + ": device_flow.timeout must be between 30s and 30m");
    }
    c.device.prompt_delay = r.duration("prompt_delay", c.device.prompt_delay);
    std::string prompt = r.str("prompt", "enter");
    if (prompt == "enter") {
      c.device.prompt = PromptMode::kEnter;
    } else if (prompt == "instruction") {
      c.device.prompt = PromptMode::kInstruction;
    } else if (prompt == "auto") {
      c.device.prompt = PromptMode::kAuto;
    } else {
      throw std::runtime_error(r.where() + ": prompt must be enter, instruction or auto");
    }
    c.device.qr = r.boolean("qr", c.device.qr);
  }
  if (doc.contains("workload_issuers")) {
    size_t i = 0;
    for (auto& w : top.array("workload_issuers")) {
      ConfigObject r(w, origin + ": workload_issuers[" + std::to_string(i++) + "]");
      r.allow_only({"name", "issuer", "audience", "audiences", "algorithms", "jwks_uri",
                    "max_token_age", "rules"});
      WorkloadIssuer wi;
      wi.name = r.str("name");
      wi.issuer = r.str("issuer");
      if (wi.name.empty() || wi.issuer.empty())
        throw std::runtime_error(r.where() + ": name and issuer are required");
      // The name qualifies the subjects of its tokens ("<name>:<sub>"): it must not pass for
      // another issuer's prefix.
      if (!is_admin_name(wi.name) || wi.name == "oidc" || wi.name == "cert")
        throw std::runtime_error(r.where() +
                                 ": name may hold letters, digits and . _ @ - only, and may not "
                                 "be \"oidc\" or \"cert\"");
      wi.audiences = r.list("audiences");
      if (r.has("audience")) wi.audiences.push_back(r.str("audience"));
      if (wi.audiences.empty()) throw std::runtime_error(r.where() + ": audience is required");
      wi.algorithms = r.list("algorithms", wi.algorithms);
      check_algorithms(wi.algorithms, r.where());
      wi.jwks_uri = r.str("jwks_uri");
      wi.max_token_age = r.duration("max_token_age", wi.max_token_age);
      if (r.array("rules").empty()) throw std::runtime_error(r.where() + ": rules are required");
      for (auto& rule : r.array("rules")) {
        ConfigObject rr(rule, r.where() + ": rule");
        rr.allow_only({"subject", "identity", "groups"});
        WorkloadRule wr{rr.str("subject"), rr.str("identity"), rr.list("groups")};
        if (wr.subject.empty() || wr.identity.empty())
          throw std::runtime_error(rr.where() + ": subject and identity are required");
        if (!is_admin_name(wr.identity))
          throw std::runtime_error(rr.where() +
                                   ": identity may hold letters, digits and . _ @ - only");
        wi.rules.push_back(std::move(wr));
      }
      c.workload_issuers.push_back(std::move(wi));
    }
  }
  return c;
}

}  // namespace castgate::oidc
