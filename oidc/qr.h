// A QR code for the verification URL, drawn with ASCII only: OpenSSH 9.2 shows other characters
// of keyboard-interactive text as octal escapes.
#pragma once

#include <string>

namespace castgate::oidc {

// Lines of "##" (dark) and "  " (light) with a quiet zone; empty if the text cannot be encoded.
std::string ascii_qr(const std::string& text);

}  // namespace castgate::oidc
