// From verified token claims to castgate's Identity, per provider preset.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/identity.h"
#include "common/result.h"
#include "oidc/config.h"

namespace castgate::oidc {

// Why verified claims name no identity. to_string() is the audit event's reason
// ("groups_overage"); the Error's detail is the plain words for the user.
enum class MappingError {
  kMissingSubject,
  kGroupsOverage,  // Entra: too many groups for the token
  kNoWorkloadRule,
};
std::string_view to_string(MappingError e);
using MappedIdentity = Result<Identity, Error<MappingError>>;

MappedIdentity map_person(const ProviderConfig& provider, const nlohmann::json& claims);
MappedIdentity map_workload(const WorkloadIssuer& issuer, const nlohmann::json& claims);

}  // namespace castgate::oidc
