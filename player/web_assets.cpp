#include "player/web_assets.h"

// The files are included verbatim by the assembler (.incbin); CMake passes their paths and
// rebuilds this file when they change.
#define CASTGATE_EMBED(name, path)             \
  asm(".section .rodata\n"                     \
      ".global " #name                         \
      "_begin\n"                               \
      ".type " #name "_begin, @object\n" #name \
      "_begin:\n"                              \
      ".incbin \"" path                        \
      "\"\n"                                   \
      ".global " #name                         \
      "_end\n"                                 \
      ".type " #name "_end, @object\n" #name   \
      "_end:\n"                                \
      ".byte 0\n"                              \
      ".previous\n");                          \
  extern "C" const char name##_begin[];        \
  extern "C" const char name##_end[];

CASTGATE_EMBED(castgate_asciinema_player_js, CASTGATE_ASCIINEMA_PLAYER_JS)
CASTGATE_EMBED(castgate_asciinema_player_css, CASTGATE_ASCIINEMA_PLAYER_CSS)
CASTGATE_EMBED(castgate_replay_page, CASTGATE_REPLAY_PAGE)

namespace castgate::player {

namespace {
std::string_view span(const char* begin, const char* end) {
  return {begin, static_cast<size_t>(end - begin)};
}
}  // namespace

std::string_view asciinema_player_js() {
  return span(castgate_asciinema_player_js_begin, castgate_asciinema_player_js_end);
}
std::string_view asciinema_player_css() {
  return span(castgate_asciinema_player_css_begin, castgate_asciinema_player_css_end);
}
std::string_view replay_page_template() {
  return span(castgate_replay_page_begin, castgate_replay_page_end);
}

}  // namespace castgate::player
