// Small string helpers shared by the configuration parsers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castgate {

std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep, bool skip_empty = true);
bool starts_with(std::string_view s, std::string_view prefix);
// Wildcard match as OpenSSH does it: "*" matches any run, "?" one character, nothing else is
// special (so "[host]:port" is literal).
bool glob_match(std::string_view pattern, std::string_view text);
// "90", "90s", "5m", "2h", "1d" -> seconds. Rejects negative and malformed values.
// "8h", "5m", "90s": a duration as the options spell it (the largest unit that divides it).
std::string duration_text(std::chrono::seconds d);
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// Reads a whole file; throws std::runtime_error naming the file on failure.
std::string read_file(const std::string& path);
// Untrusted text made harmless for a human's terminal (messages to SSH users, diagnostics on
// stderr, the player's tables): printable valid UTF-8 is kept (so "josé" stays readable); control
// characters (C0, DEL, C1), bidirectional overrides, backslash and bytes that are not valid UTF-8
// are escaped (\xNN, or \uNNNN for C1 and bidi). At most `max_len` bytes of output, then "...".
// The result is always valid UTF-8 and holds no control character.
std::string printable(std::string_view s, size_t max_len = 200, bool escape_backslash = true);

// Length of the valid UTF-8 character at the start of `s` (1 to 4), or 0 if it does not start
// with one (invalid lead byte, bad continuation, overlong form, surrogate, above U+10FFFF, or cut
// short). Sets `code_point`.
size_t utf8_char_at(std::string_view s, uint32_t& code_point);

}  // namespace castgate
