#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/health_endpoint.h"

// The health port's request heads come from anyone who can reach it.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view request(reinterpret_cast<const char*>(data), size);
  auto route = castgate::route_health_request(request);
  if (route == castgate::HealthRoute::kReady || route == castgate::HealthRoute::kLive ||
      route == castgate::HealthRoute::kMetrics) {
    if (request.substr(0, 4) != "GET ") __builtin_trap();
  }
  return 0;
}
