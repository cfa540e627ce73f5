#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/ssh_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)castgate::ssh::parse_openssh_ed25519_private_key(text);
  (void)castgate::ssh::parse_public_key(text);
  return 0;
}
