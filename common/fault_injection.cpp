#include "common/fault_injection.h"

#ifdef CASTGATE_FAULT_INJECTION
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace castgate {

void fault_point(std::string_view where, std::string_view text) {
  static const std::string spec = [] {
    const char* v = std::getenv("CASTGATE_TEST_FAULT");
    return std::string(v ? v : "");
  }();
  auto colon = spec.find(':');
  if (colon == std::string::npos || spec.compare(0, colon, where) != 0) return;
  std::string_view marker = std::string_view(spec).substr(colon + 1);
  if (!marker.empty() && text.find(marker) != std::string_view::npos)
    throw std::runtime_error("injected fault at " + std::string(where));
}

}  // namespace castgate
#endif
