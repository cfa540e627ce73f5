#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "gateway/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto t = castgate::Targets::parse(text, "fuzz");
    for (auto& n : t.names()) t.find(n)->known_hosts_names();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
