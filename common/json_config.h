// Checked reading of the JSON configuration files (targets, policy, alert rules, OIDC).
// Every problem, from a malformed number to a value of the wrong type, becomes a
// std::runtime_error that names the file and the place in it; nothing else escapes.
#pragma once

#include <chrono>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace castgate {

// Parses a whole document. Throws std::runtime_error("<origin>: not valid JSON: ...").
nlohmann::json parse_config_json(std::string_view text, const std::string& origin);

// One JSON object of a configuration file. Throws unless `j` is an object.
class ConfigObject {
 public:
  ConfigObject(const nlohmann::json& j, std::string where);

  const std::string& where() const { return where_; }
  bool has(const char* key) const { return j_.contains(key); }

  // Refuses keys outside `allowed` (a typo must not silently drop a setting).
  void allow_only(std::initializer_list<std::string_view> allowed) const;
  std::string str(const char* key, const std::string& fallback = "") const;
  std::vector<std::string> list(const char* key, std::vector<std::string> fallback = {}) const;
  bool boolean(const char* key, bool fallback) const;
  int integer(const char* key, int fallback, int min, int max) const;
  std::chrono::seconds duration(const char* key, std::chrono::seconds fallback) const;
  // The array under `key` (empty when absent); throws when it is present but not an array.
  const nlohmann::json& array(const char* key) const;

 private:
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace castgate
