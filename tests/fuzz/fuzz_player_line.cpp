// Stored logs are untrusted input to the player.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "asciicast/utf8.h"
#include "player/log_reader.h"
#include "player/terminal_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  castgate::player::StoredEvent e;
  castgate::player::unwrap_line(line, e);
  castgate::player::session_named_in(line);
  // Whatever is recorded, what reaches the analyst's terminal is valid UTF-8 without C0, DEL or
  // C1 controls.
  std::string shown = castgate::player::terminal_safe(line);
  if (!castgate::asciicast::utf8_valid(shown)) __builtin_trap();
  for (size_t i = 0; i < shown.size(); ++i) {
    auto c = static_cast<unsigned char>(shown[i]);
    bool c1 = c == 0xc2 && i + 1 < shown.size() && static_cast<unsigned char>(shown[i + 1]) < 0xa0;
    if (c < 0x20 || c == 0x7f || c1) __builtin_trap();
  }
  return 0;
}
