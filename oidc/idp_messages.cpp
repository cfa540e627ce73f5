#include "oidc/idp_messages.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace castgate::oidc {

using nlohmann::json;

namespace {

constexpr size_t kMaxField = 2048;

json parse_object(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  return j.is_object() ? j : json();
}

// A string member, or "" when absent or not a string.
std::string string_member(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

// Printable ASCII without spaces: what may be shown on a terminal or used as a URL.
bool plain_token(std::string_view s) {
  return !s.empty() && s.size() <= kMaxField &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool web_url(std::string_view s) {
  return plain_token(s) && (starts_with(s, "https://") || starts_with(s, "http://"));
}

// A whole number of seconds clamped to [lo, hi]; `fallback` when absent or not a number.
std::chrono::seconds seconds_member(const json& j, const char* key, int64_t fallback, int64_t lo,
                                    int64_t hi) {
  if (!j.contains(key) || !j[key].is_number()) return std::chrono::seconds(fallback);
  double v = j[key].get<double>();  // never cast an out-of-range double to an integer
  if (std::isnan(v)) v = static_cast<double>(fallback);
  return std::chrono::seconds(
      static_cast<int64_t>(std::clamp(v, static_cast<double>(lo), static_cast<double>(hi))));
}

}  // namespace

std::string_view to_string(IdpAnswerError e) {
  switch (e) {
    case IdpAnswerError::kNoIssuer:
      return "no issuer";
    case IdpAnswerError::kIssuerMismatch:
      return "issuer mismatch";
    case IdpAnswerError::kNoJwksUri:
      return "no jwks_uri";
    case IdpAnswerError::kBadEndpoint:
      return "bad endpoint";
    case IdpAnswerError::kNoDeviceCode:
      return "no device_code";
    case IdpAnswerError::kNoUserCode:
      return "no user_code";
    case IdpAnswerError::kNoVerificationUri:
      return "no verification_uri";
  }
  return "unknown";
}

IdpResult<DiscoveryDocument> parse_discovery(std::string_view body,
                                             const std::string& expected_issuer) {
  json j = parse_object(body);
  DiscoveryDocument d;
  d.issuer = string_member(j, "issuer");
  if (d.issuer.empty()) {
    return fail(IdpAnswerError::kNoIssuer,
                "the discovery document is not a JSON object naming its issuer");
  }
  if (d.issuer != expected_issuer) {
    return fail(IdpAnswerError::kIssuerMismatch, "the discovery document names issuer " +
                                                     printable(d.issuer, 200) + ", not " +
                                                     expected_issuer);
  }
  d.jwks_uri = string_member(j, "jwks_uri");
  if (!web_url(d.jwks_uri)) {
    return fail(IdpAnswerError::kNoJwksUri, "the discovery document has no valid jwks_uri");
  }
  d.device_authorization_endpoint = string_member(j, "device_authorization_endpoint");
  d.token_endpoint = string_member(j, "token_endpoint");
  for (auto* url : {&d.device_authorization_endpoint, &d.token_endpoint})
    if (!url->empty() && !web_url(*url)) {
      return fail(IdpAnswerError::kBadEndpoint,
                  "the discovery document has an invalid endpoint URL " + printable(*url, 200));
    }
  return d;
}

IdpResult<DeviceAuthorization> parse_device_authorization(std::string_view body) {
  json j = parse_object(body);
  DeviceAuthorization a;
  a.device_code = string_member(j, "device_code");
  a.user_code = string_member(j, "user_code");
  // RFC 8628 says verification_uri; some providers still send verification_url.
  a.verification_uri = string_member(j, "verification_uri");
  if (a.verification_uri.empty()) a.verification_uri = string_member(j, "verification_url");
  a.verification_uri_complete = string_member(j, "verification_uri_complete");
  if (!plain_token(a.device_code)) {
    return fail(IdpAnswerError::kNoDeviceCode,
                "the device authorization answer has no valid device_code");
  }
  if (!plain_token(a.user_code)) {
    return fail(IdpAnswerError::kNoUserCode,
                "the device authorization answer has no printable user_code");
  }
  if (!web_url(a.verification_uri)) {
    return fail(IdpAnswerError::kNoVerificationUri,
                "the device authorization answer has no valid verification_uri");
  }
  if (!a.verification_uri_complete.empty() && !web_url(a.verification_uri_complete))
    a.verification_uri_complete.clear();  // optional: show the plain URL and code instead
  a.expires_in = seconds_member(j, "expires_in", 600, 1, 3600);
  a.interval = seconds_member(j, "interval", 5, 1, 60);
  return a;
}

std::string oauth_error_code(std::string_view body) {
  return string_member(parse_object(body), "error");
}

std::string oauth_error_text(std::string_view body) {
  json j = parse_object(body);
  std::string e = string_member(j, "error");
  if (e.empty()) return "";
  e = printable(e, 100);
  std::string description = string_member(j, "error_description");
  if (!description.empty()) e += ": " + printable(description, 200);
  return e;
}

std::optional<std::string> id_token_of(std::string_view body) {
  std::string token = string_member(parse_object(body), "id_token");
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace castgate::oidc
