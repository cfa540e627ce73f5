#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "gateway/identity_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto ids = castgate::IdentityKeys::parse(text, "fuzz");
    ids.find(text.substr(0, 51));
  } catch (const std::runtime_error&) {
  }
  return 0;
}
