// The one gate for untrusted text entering the event model. Every string that comes from a peer,
// a token, a file name or a terminal becomes valid UTF-8 here (each invalid sequence turns into
// U+FFFD, as in asciicast output), and a value too long for the line limit is cut with a marker
// that states its full length and SHA-256, so that an investigator can still match it.
// SessionLog applies this to every event it writes; the JSON writer behind it replaces rather
// than throws as a backstop.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace castgate::asciicast {

// `raw` as valid UTF-8 (a copy; unchanged if it already is).
std::string valid_utf8(std::string_view raw);

// Makes every string value in `value` (recursively) valid UTF-8. Returns how many it changed.
size_t make_strings_valid(nlohmann::json& value);

// `value` (valid UTF-8) cut to a prefix of at most `keep` bytes on a character boundary, followed
// by the marker "…[truncated: N bytes, sha256 HEX]" naming the whole value.
std::string truncated_with_digest(std::string_view value, size_t keep);
// Bytes the marker adds for a value of `total` bytes.
size_t truncation_marker_size(size_t total);
inline constexpr std::string_view kTruncationMarker = "…[truncated: ";

// Canonical JSON text of `value`. Never throws: a string that is not valid UTF-8 despite the gate
// is written with U+FFFD instead.
std::string canonical_dump(const nlohmann::json& value);

}  // namespace castgate::asciicast
