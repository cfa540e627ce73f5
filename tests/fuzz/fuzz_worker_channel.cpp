// The parent decodes what its worker processes send (a compromised worker is untrusted).
#include <cstdlib>

#include "gateway/worker_channel.h"

using namespace castgate::worker_channel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto m = decode(packet);
  if (m && decode(encode(*m)) == std::nullopt) std::abort();  // what decodes, round-trips
  if (m && encode(*m) != packet) std::abort();                // one encoding per message
  return 0;
}
