#include "player/replay_page.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace castgate::player {

TEST_CASE("script_safe_json keeps recorded text from ending the data block") {
  std::string hostile = R"({"c":"</script><script>alert(1)</script><!-- x","n":1})";
  auto safe = script_safe_json(hostile);
  CHECK(safe.find('<') == std::string::npos);
  CHECK(safe.find("</script") == std::string::npos);
  // Still the same JSON value.
  CHECK(nlohmann::json::parse(safe) == nlohmann::json::parse(hostile));
  CHECK(nlohmann::json::parse(safe)["c"] == "</script><script>alert(1)</script><!-- x");
}

}  // namespace castgate::player
