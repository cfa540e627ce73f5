#include "common/fault_injection.h"

#ifdef CASTGATE_FAULT_INJECTION
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "common/unique_fd.h"

namespace castgate {

void fault_point(std::string_view where, std::string_view text) {
  static const std::string spec = [] {
    const char* v = std::getenv("CASTGATE_TEST_FAULT");
    return std::string(v ? v : "");
  }();
  auto colon = spec.find(':');
  if (colon == std::string::npos) return;
  std::string_view point = std::string_view(spec).substr(0, colon);
  std::string_view action = "throw";
  if (auto bang = point.find('!'); bang != std::string_view::npos) {
    action = point.substr(bang + 1);
    point = point.substr(0, bang);
  }
  if (point != where) return;
  std::string_view marker = std::string_view(spec).substr(colon + 1);
  if (marker.empty() || text.find(marker) == std::string_view::npos) return;
  if (action == "abort") std::abort();
  if (action == "forbidden") {
    // What a compromised worker would do next: write a file. The sandbox ends the process here;
    // without one the file appears (the test looks for it).
    UniqueFd escaped(
        ::open("/tmp/castgate-sandbox-escape", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  }
  throw std::runtime_error("injected fault at " + std::string(where));
}

}  // namespace castgate
#endif
