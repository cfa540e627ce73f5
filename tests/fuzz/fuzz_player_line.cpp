// Stored logs are untrusted input to the player.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "player/log_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  castgate::player::StoredEvent e;
  castgate::player::unwrap_line(std::string_view(reinterpret_cast<const char*>(data), size), e);
  return 0;
}
