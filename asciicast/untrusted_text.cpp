#include "asciicast/untrusted_text.h"

#include <simdjson.h>

#include "asciicast/utf8.h"
#include "common/crypto.h"

namespace castgate::asciicast {

std::string valid_utf8(std::string_view raw) {
  if (simdjson::validate_utf8(raw.data(), raw.size())) return std::string(raw);
  Utf8Sanitizer z;
  std::string out;
  z.feed(raw, out);
  z.flush(out);
  return out;
}

size_t make_strings_valid(nlohmann::json& value) {
  size_t changed = 0;
  if (value.is_string()) {
    auto& s = value.get_ref<std::string&>();
    if (!simdjson::validate_utf8(s.data(), s.size())) {
      s = valid_utf8(s);
      ++changed;
    }
  } else if (value.is_structured()) {
    for (auto& member : value) changed += make_strings_valid(member);
  }
  return changed;
}

namespace {
std::string marker_for(std::string_view whole) {
  std::string m(kTruncationMarker);
  m += std::to_string(whole.size());
  m += " bytes, sha256 ";
  m += sha256_hex(whole);
  m += "]";
  return m;
}
}  // namespace

size_t truncation_marker_size(size_t total) {
  return kTruncationMarker.size() + std::to_string(total).size() +
         std::string_view(" bytes, sha256 ").size() + 64 + 1;
}

std::string truncated_with_digest(std::string_view value, size_t keep) {
  std::string out(value.substr(0, utf8_prefix_at_most(value, keep)));
  out += marker_for(value);
  return out;
}

std::string canonical_dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace castgate::asciicast
