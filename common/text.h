// Small string helpers shared by the configuration parsers.
#pragma once

#include <chrono>
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
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// Reads a whole file; throws std::runtime_error naming the file on failure.
std::string read_file(const std::string& path);
// A printable form of untrusted text for diagnostics: control bytes escaped, length capped.
std::string printable(std::string_view s, size_t max_len = 200);

}  // namespace castgate
