#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "asciicast/alert_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto rules = castgate::asciicast::AlertRules::compile(
        castgate::asciicast::AlertRules::parse(text, "fuzz"));
    rules.match("command", "rm -rf /");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
