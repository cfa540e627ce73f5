#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "gateway/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto p = castgate::Policy::parse(text, "fuzz");
    castgate::Identity id;
    id.subject = "alice";
    id.groups = {"ops"};
    p.evaluate(id, "db1.int", "root");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
