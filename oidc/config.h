// OIDC settings (the --oidc-config JSON file): the identity provider for people (device flow),
// how its claims map to an identity, and trusted issuers of workload tokens.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castgate::oidc {

enum class Preset { kGeneric, kOkta, kEntra };

struct ClaimMapping {
  std::string subject = "sub";
  std::string name = "preferred_username";
  std::string email = "email";
  std::string groups = "groups";  // Entra: "groups" or "roles" (app roles)
};

// What makes a sign-in multi-factor (policy rules with "mfa": true): any of `amr` among the
// token's amr values, or its acr among `acr`; or every sign-in, when the operator says the
// provider requires a second factor for castgate (Entra ID's v2.0 tokens carry no amr: a
// Conditional Access policy requiring MFA for the castgate application is how Entra enforces it).
struct MfaEvidence {
  std::vector<std::string> amr = {"mfa"};
  std::vector<std::string> acr;
  bool enforced_by_provider = false;
};

struct ProviderConfig {
  Preset preset = Preset::kGeneric;
  std::string issuer;  // exact; Entra: derived from the tenant unless given
  std::string tenant;  // Entra tenant id
  std::string client_id;
  std::string client_secret;  // empty for public clients (Entra, Okta native apps)
  std::vector<std::string> scopes = {"openid", "profile", "email"};
  std::vector<std::string> algorithms = {"RS256"};
  ClaimMapping claims;
  MfaEvidence mfa;
  std::chrono::seconds clock_skew{60};
  std::chrono::seconds max_token_age{3600};
};

enum class PromptMode {
  kEnter,        // instruction and a prompt with the URL and code; one Enter, at any time
  kInstruction,  // instruction only: no Enter at all, but hidden by `ssh -q`
  kAuto,         // instruction first; the prompt follows after prompt_delay without approval
};

struct DeviceFlowConfig {
  // How long castgate waits for an approval. Unset: as long as the provider says its code lives
  // (`expires_in`: 10 minutes at Okta, 15 at Entra ID), never more than kLongestWait.
  std::optional<std::chrono::seconds> timeout;
  static constexpr std::chrono::seconds kLongestWait{1800};
  std::chrono::seconds longest_wait() const { return timeout ? *timeout : kLongestWait; }
  PromptMode prompt = PromptMode::kEnter;
  std::chrono::seconds prompt_delay{15};
  bool qr = true;
};

struct WorkloadRule {
  std::string subject;  // glob on the token's sub
  std::string identity;
  std::vector<std::string> groups;
};

struct WorkloadIssuer {
  std::string name;  // short name, prefixes the identity's subject
  std::string issuer;
  std::vector<std::string> audiences;
  std::vector<std::string> algorithms = {"RS256"};
  std::string jwks_uri;  // optional: skip discovery
  std::chrono::seconds max_token_age{3600};
  std::vector<WorkloadRule> rules;
};

struct OidcConfig {
  std::optional<ProviderConfig> provider;
  DeviceFlowConfig device;
  std::chrono::seconds key_binding_ttl{3600};  // 0: every connection signs in again
  // A bound key signs in only from the address (IPv4, or IPv6 /64) of the device sign-in.
  bool key_binding_same_source = true;
  std::chrono::seconds jwks_min_refresh{30};
  std::vector<WorkloadIssuer> workload_issuers;
  std::string ca_bundle;

  // Throws std::runtime_error naming the setting.
  static OidcConfig parse(std::string_view json_text, const std::string& origin);
};

std::string_view to_string(Preset p);

}  // namespace castgate::oidc
