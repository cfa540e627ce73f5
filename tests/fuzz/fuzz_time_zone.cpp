#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "common/time_zone.h"

// zoneinfo files come from the system, but a container image can carry anything.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto zone = castgate::TimeZone::parse(bytes, "fuzz");
    for (int64_t t : {INT64_C(-4000000000), INT64_C(0), INT64_C(1780000000), INT64_C(4000000000)}) {
      zone.offset_at(std::chrono::sys_seconds(std::chrono::seconds(t)));
      zone.from_local(t);
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
