// Small checks on protocol text shared by the git and rsync followers (transfer_follower.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace castgate::asciicast::wire {

inline constexpr size_t kMaxText = 512;  // error or status text kept for the record

inline bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A SHA-1 or SHA-256 object id as git writes it.
inline bool object_id(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) && is_hex(s);
}

inline bool zero_id(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// Printable ASCII or UTF-8, no spaces or control characters: ref names, capabilities.
inline bool token(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// Printable text, spaces allowed: v2 capability lines ("fetch=shallow wait-for-done").
inline bool printable(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Text from the peer for a status: printable, bounded, trailing newline dropped.
inline std::string status_text(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  std::string out(s.substr(0, kMaxText));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

inline uint32_t big_endian32(std::string_view b) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[3]));
}

inline uint32_t little_endian32(std::string_view b) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[3])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[0]));
}

}  // namespace castgate::asciicast::wire
