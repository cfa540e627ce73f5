#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "gateway/known_hosts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto kh = castgate::KnownHosts::parse(text, "fuzz");
    kh.check({"[db1.int]:2222", "db1.int"}, text.substr(0, 40));
    kh.key_types_for({"db1.int"});
  } catch (const std::runtime_error&) {
  }
  return 0;
}
