// Recorded text made safe to print on an analyst's terminal. Whatever a user could put into a
// record (a login name, a command, a target, a forged line in the log store) may hold escape
// sequences that would clear the screen, set the window title or worse once printed.
#pragma once

#include <string>
#include <string_view>

namespace castgate::player {

// `recorded` with every byte or character a terminal could act on written as a visible escape:
// C0 controls and DEL as \xNN, C1 controls (U+0080..U+009F) as \u00NN, bytes that are not valid
// UTF-8 as \xNN, and the backslash itself as \\ so that an escape cannot be faked. Valid
// non-ASCII text ("josé", "€") stays as it is.
std::string terminal_safe(std::string_view recorded);

}  // namespace castgate::player
