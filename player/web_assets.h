// The web player's files, built into castgate-player so a replay page needs nothing else:
// asciinema-player (npm, Apache-2.0) and castgate's page template (player/web/replay.html).
#pragma once

#include <string_view>

namespace castgate::player {

std::string_view asciinema_player_js();
std::string_view asciinema_player_css();
std::string_view replay_page_template();

}  // namespace castgate::player
