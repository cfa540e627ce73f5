// Byte encodings used across castgate: base64 (standard and URL-safe, strict decoding) and hex.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace castgate {

std::string base64_encode(std::string_view bytes);
std::string base64url_encode(std::string_view bytes);  // no padding, as in JWS
// Strict: rejects characters outside the alphabet, bad padding and non-zero trailing bits.
std::optional<std::string> base64_decode(std::string_view text);
// Accepts input with or without padding, as JWS requires none and some issuers add it.
std::optional<std::string> base64url_decode(std::string_view text);

std::string hex_encode(std::string_view bytes);

}  // namespace castgate
