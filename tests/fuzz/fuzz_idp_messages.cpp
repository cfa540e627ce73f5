// What an identity provider sends over the network: discovery documents, key sets, device
// authorization and token answers, OAuth errors. Every body goes through every reader.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "oidc/idp_messages.h"
#include "oidc/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace castgate::oidc;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)parse_discovery(body, "https://idp.test");
  (void)parse_device_authorization(body);
  oauth_error_code(body);
  oauth_error_text(body);
  id_token_of(body);
  if (auto keys = JwkSet::parse(body))
    for (const char* kid : {"", "rsa1", "ec1", "ed1"}) keys->find(kid);
  return 0;
}
