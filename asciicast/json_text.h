// Canonical JSON text, byte for byte what nlohmann::json::dump() writes for the same value:
// object keys sorted, no whitespace, minimal string escapes (\" \\ \b \f \n \r \t, other control
// characters as \u00xx), non-ASCII kept as UTF-8. Recording lines are written in this form so
// that the hash chain can be checked both on the raw lines and after a log shipper re-encodes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace castgate::asciicast {

// Appends `utf8` as a quoted JSON string. The input must be valid UTF-8.
void append_json_string(std::string& out, std::string_view utf8);
// Appends as a quoted JSON string the longest prefix of `utf8` whose escaped form (without the
// quotes) is at most `budget` bytes, ending on a character boundary. Returns the bytes of `utf8`
// it took (at least one character, even over budget, so that callers always make progress).
size_t append_json_string_bounded(std::string& out, std::string_view utf8, size_t budget);
// Length of append_json_string's output for `utf8`, without writing it.
size_t json_string_size(std::string_view utf8);
// Appends a double as nlohmann::json writes it (shortest form that round-trips).
void append_json_double(std::string& out, double v);
// Appends `micros` / 1e6 as nlohmann::json writes that double, quickly for the common case.
void append_json_seconds(std::string& out, int64_t micros);
void append_json_uint(std::string& out, uint64_t v);

}  // namespace castgate::asciicast

namespace castgate::asciicast {
// Longest prefix of valid UTF-8 `s`, ending on a character boundary, whose JSON-escaped form
// (without quotes) is at most `budget` bytes.
size_t json_escaped_prefix(std::string_view s, size_t budget);
}  // namespace castgate::asciicast
