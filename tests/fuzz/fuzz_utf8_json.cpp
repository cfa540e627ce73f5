// Terminal output is untrusted: whatever the target prints must become valid UTF-8 and a JSON
// string that parses back to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "asciicast/json_text.h"
#include "asciicast/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  castgate::asciicast::Utf8Sanitizer z;
  std::string out;
  size_t cut = size ? data[0] % (size + 1) : 0;
  z.feed(in.substr(0, cut), out);
  z.feed(in.substr(cut), out);
  z.flush(out);
  if (!castgate::asciicast::utf8_valid(out)) std::abort();
  std::string json;
  castgate::asciicast::append_json_string(json, out);
  if (json.size() != castgate::asciicast::json_string_size(out)) std::abort();
  auto parsed = nlohmann::json::parse(json);
  if (parsed.get<std::string>() != out) std::abort();
  if (nlohmann::json(out).dump() != json) std::abort();
  size_t n = castgate::asciicast::json_escaped_prefix(out, size / 2);
  if (!castgate::asciicast::utf8_valid(std::string_view(out).substr(0, n))) std::abort();
  return 0;
}
