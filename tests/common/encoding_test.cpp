#include "common/encoding.h"

#include <doctest/doctest.h>

#include "common/crypto.h"

using namespace castgate;

TEST_CASE("base64 round-trips every length and rejects malformed text") {
  for (size_t n = 0; n < 64; ++n) {
    std::string data = random_bytes(n);
    auto enc = base64_encode(data);
    CHECK(enc.size() % 4 == 0);
    auto dec = base64_decode(enc);
    REQUIRE(dec);
    CHECK(*dec == data);
    auto url = base64url_encode(data);
    CHECK(url.find('=') == std::string::npos);
    auto durl = base64url_decode(url);
    REQUIRE(durl);
    CHECK(*durl == data);
  }
  CHECK(base64_encode("hello") == "aGVsbG8=");
  CHECK_FALSE(base64_decode("aGVsbG8"));   // missing padding
  CHECK_FALSE(base64_decode("aGVsbG9="));  // non-zero trailing bits
  CHECK_FALSE(base64_decode("aGV$bG8="));  // bad character
  CHECK_FALSE(base64url_decode("a"));      // impossible length
  CHECK(*base64url_decode("aGVsbG8") == "hello");
  CHECK(*base64url_decode("aGVsbG8=") == "hello");
}

TEST_CASE("hex and ids") {
  CHECK(hex_encode(std::string("\x00\xff\x10", 3)) == "00ff10");
  auto a = random_id(10), b = random_id(10);
  CHECK(a.size() == 16);
  CHECK(a != b);
  CHECK(a.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567") == std::string::npos);
}

TEST_CASE("Ed25519 signs and verifies; a changed byte fails") {
  auto key = Ed25519PrivateKey::generate();
  std::string sig = key.sign("message");
  CHECK(sig.size() == 64);
  CHECK(ed25519_verify(key.public_key_raw(), "message", sig));
  CHECK_FALSE(ed25519_verify(key.public_key_raw(), "messagE", sig));
  sig[0] ^= 1;
  CHECK_FALSE(ed25519_verify(key.public_key_raw(), "message", sig));
}

#include "common/text.h"

TEST_CASE("wildcards: only * and ? are special") {
  CHECK(glob_match("db*.int", "db1.int"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));
  CHECK(glob_match("[127.0.0.1]:22", "[127.0.0.1]:22"));
  CHECK_FALSE(glob_match("[12]", "1"));
  CHECK(glob_match("*a*b*c*", "xxaxxbxxcxx"));
  CHECK_FALSE(glob_match("*a*b*c*", "xxaxxcxxbxx"));
  CHECK(parse_duration("5m")->count() == 300);
  CHECK(parse_duration("90")->count() == 90);
  CHECK_FALSE(parse_duration("-5"));
  CHECK_FALSE(parse_duration("5x"));
}
