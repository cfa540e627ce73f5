#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "oidc/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    castgate::oidc::OidcConfig::parse(text, "fuzz");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
