// The identity provider's JSON answers (discovery, device authorization, token, OAuth errors),
// read strictly. They arrive over the network, so they are untrusted bytes: a missing field, a
// value of the wrong type or an absurd number is an error with a reason, never an exception, and
// nothing the provider sends reaches a user's terminal unless it is plain printable text.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace castgate::oidc {

// What is wrong with a provider's answer; the Error's detail says it in words for the log and the
// audit event.
enum class IdpAnswerError {
  kNoIssuer,  // not a JSON object naming its issuer
  kIssuerMismatch,
  kNoJwksUri,
  kBadEndpoint,
  kNoDeviceCode,
  kNoUserCode,  // missing or not printable
  kNoVerificationUri,
};
std::string_view to_string(IdpAnswerError e);
template <class T>
using IdpResult = Result<T, Error<IdpAnswerError>>;

struct DiscoveryDocument {
  std::string issuer;
  std::string jwks_uri;
  std::string device_authorization_endpoint;  // empty: the provider offers no device flow
  std::string token_endpoint;
};
// The issuer must equal `expected_issuer`.
IdpResult<DiscoveryDocument> parse_discovery(std::string_view body,
                                             const std::string& expected_issuer);

// RFC 8628 section 3.2.
struct DeviceAuthorization {
  std::string device_code;
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // empty where the provider has none (Entra)
  std::chrono::seconds expires_in{600};   // clamped to 1 s .. 1 h
  std::chrono::seconds interval{5};       // clamped to 1 s .. 60 s
};
IdpResult<DeviceAuthorization> parse_device_authorization(std::string_view body);

// An OAuth error answer (RFC 6749 section 5.2): the "error" code, or "" if the body is not one.
std::string oauth_error_code(std::string_view body);
// "code: description" for diagnostics (description made printable and capped), or "".
std::string oauth_error_text(std::string_view body);

// The id_token of a successful token response, or nullopt.
std::optional<std::string> id_token_of(std::string_view body);

}  // namespace castgate::oidc
