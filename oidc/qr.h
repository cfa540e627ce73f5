// A QR code of the verification URL for a terminal: half-block characters, two module rows per
// line, so that a code for a typical URL takes 19 to 21 lines and fits an 80x24 terminal with
// the prompt under it. It goes into the keyboard-interactive *prompt*, which OpenSSH writes to
// the terminal whole (and shows under `ssh -q`); the instruction passes through OpenSSH's logger,
// which cuts text at about 1 KiB and escapes non-ASCII, so a code there would arrive broken.
#pragma once

#include <string>

namespace castgate::oidc {

// Light modules (and a 2-module quiet zone) are drawn, dark ones left blank, like `qrencode -t
// UTF8`: on the usual light-on-dark terminal the code has the right polarity. Empty if `text`
// cannot be encoded or the code would need more than `max_lines` lines: a code is shown whole
// or not at all.
std::string terminal_qr(const std::string& text, int max_lines);

}  // namespace castgate::oidc
