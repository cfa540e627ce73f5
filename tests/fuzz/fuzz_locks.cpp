#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "gateway/locks.h"

// The lock file is an operator's, but edited in a hurry during an incident.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto locks = castgate::Locks::parse(text, "fuzz");
    castgate::Identity id;
    id.subject = "oidc:00u1";
    id.groups = {"ops", "contractors"};
    locks.match(id, "db1.int");
    locks.match(id, "");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
