#include "common/json_config.h"

#include <algorithm>
#include <stdexcept>

#include "common/text.h"

namespace castgate {

using nlohmann::json;

json parse_config_json(std::string_view text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    throw std::runtime_error(origin + ": not valid JSON: " + e.what());
  }
}

ConfigObject::ConfigObject(const json& j, std::string where) : j_(j), where_(std::move(where)) {
  if (!j_.is_object()) throw std::runtime_error(where_ + " must be an object");
}

void ConfigObject::allow_only(std::initializer_list<std::string_view> allowed) const {
  for (auto& [key, value] : j_.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw std::runtime_error(where_ + ": unknown setting \"" + printable(key, 60) + "\"");
}

std::string ConfigObject::str(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_string()) throw std::runtime_error(where_ + ": " + key + " must be a string");
  return j_[key].get<std::string>();
}

std::vector<std::string> ConfigObject::list(const char* key,
                                            std::vector<std::string> fallback) const {
  if (!has(key)) return fallback;
  std::vector<std::string> out;
  for (auto& v : array(key)) {
    if (!v.is_string()) throw std::runtime_error(where_ + ": " + key + " must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool ConfigObject::boolean(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_boolean())
    throw std::runtime_error(where_ + ": " + key + " must be true or false");
  return j_[key].get<bool>();
}

int ConfigObject::integer(const char* key, int fallback, int min, int max) const {
  if (!has(key)) return fallback;
  const json& v = j_[key];
  // Compare as 64-bit so 4294967318 is not read as 22.
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
    throw std::runtime_error(where_ + ": " + key + " must be a whole number from " +
                             std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int>(v.get<int64_t>());
}

std::chrono::seconds ConfigObject::duration(const char* key, std::chrono::seconds fallback) const {
  if (!has(key)) return fallback;
  auto d = j_[key].is_string() ? parse_duration(j_[key].get<std::string>()) : std::nullopt;
  if (!d) throw std::runtime_error(where_ + ": " + key + " must be a duration like \"90s\"");
  return *d;
}

const json& ConfigObject::array(const char* key) const {
  static const json kEmpty = json::array();
  if (!has(key)) return kEmpty;
  if (!j_[key].is_array()) throw std::runtime_error(where_ + ": " + key + " must be a list");
  return j_[key];
}

}  // namespace castgate
