// From verified token claims to castgate's Identity, per provider preset.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/identity.h"
#include "oidc/config.h"

namespace castgate::oidc {

struct MappedIdentity {
  bool ok = false;
  Identity identity;
  std::string error;         // for the audit event: "groups_overage", "missing_subject", ...
  std::string user_message;  // plain words
};

MappedIdentity map_person(const ProviderConfig& provider, const nlohmann::json& claims);
MappedIdentity map_workload(const WorkloadIssuer& issuer, const nlohmann::json& claims);

}  // namespace castgate::oidc
