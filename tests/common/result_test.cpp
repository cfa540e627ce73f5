#include "common/result.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace castgate;

namespace {

enum class ResultTestCode { kFirst, kSecond };

Result<int, Error<ResultTestCode>> halve(int n) {
  if (n % 2 != 0) return fail(ResultTestCode::kSecond, "odd: " + std::to_string(n));
  return n / 2;
}

Result<void, Error<ResultTestCode>> check_even(int n) {
  if (n % 2 != 0) return fail(ResultTestCode::kFirst, "odd");
  return {};
}

}  // namespace

TEST_CASE("Result holds the value or the error, never both") {
  auto good = halve(8);
  REQUIRE(good.has_value());
  CHECK(static_cast<bool>(good));
  CHECK(good.value() == 4);
  CHECK(*good == 4);

  auto bad = halve(7);
  REQUIRE_FALSE(bad.has_value());
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.error().code == ResultTestCode::kSecond);
  CHECK(bad.error().detail == "odd: 7");
  CHECK(bad.error() == Error<ResultTestCode>{ResultTestCode::kSecond, "odd: 7"});
  CHECK_THROWS_AS(bad.value(), BadResultAccess);
}

TEST_CASE("Result gives access to its value's members and moves it out") {
  Result<std::string, Error<ResultTestCode>> text = std::string("castgate");
  CHECK(text->size() == 8);
  std::string taken = std::move(text).value();
  CHECK(taken == "castgate");

  Result<std::unique_ptr<int>, Error<ResultTestCode>> owned = std::make_unique<int>(5);
  REQUIRE(owned);
  std::unique_ptr<int> p = *std::move(owned);
  CHECK(*p == 5);

  Result<int, std::string> with_plain_error = fail(std::string("why"));
  REQUIRE_FALSE(with_plain_error);
  CHECK(with_plain_error.error() == "why");
}

TEST_CASE("Result<void> says only whether it worked") {
  auto fine = check_even(2);
  CHECK(fine.has_value());
  CHECK_NOTHROW(fine.value());
  auto refused = check_even(3);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ResultTestCode::kFirst);
  CHECK(refused.error().detail == "odd");
  CHECK_THROWS_AS(refused.value(), BadResultAccess);
}
