// The source-address list of user certificates: malformed lists are errors (never a wider
// match), well-formed ones match exactly what they say.
#include <doctest/doctest.h>

#include <string>

#include "gateway/presented_certificate.h"

using namespace castgate;

namespace {

AddressListError error_of(std::string_view text) {
  return parse_address_list(text).error;
}

}  // namespace

TEST_CASE("address lists: well-formed IPv4 and IPv6 blocks and addresses") {
  auto list = parse_address_list("10.0.0.0/8,192.0.2.7,2001:db8::/32,::1,0.0.0.0/0");
  REQUIRE(list.ok());
  CHECK(list.blocks.size() == 5);
  CHECK(list.blocks[0].prefix_length == 8);
  CHECK(list.blocks[1].prefix_length == 32);  // an address alone is a /32 (or /128)
  CHECK(list.blocks[3].prefix_length == 128);
  CHECK(list.contains("10.255.1.2"));
  CHECK(list.contains("192.0.2.7"));
  CHECK(list.contains("2001:db8:1::5"));
  CHECK(list.contains("::1"));
  CHECK_FALSE(parse_address_list("10.0.0.0/8").contains("11.0.0.1"));
  CHECK_FALSE(parse_address_list("192.0.2.7").contains("192.0.2.8"));
  CHECK_FALSE(parse_address_list("2001:db8::/32").contains("2001:db9::1"));
  CHECK_FALSE(parse_address_list("::1").contains("::2"));
  // Prefixes that do not end on a byte boundary.
  CHECK(parse_address_list("192.0.2.64/26").contains("192.0.2.127"));
  CHECK_FALSE(parse_address_list("192.0.2.64/26").contains("192.0.2.128"));
  CHECK_FALSE(parse_address_list("192.0.2.64/26").contains("192.0.2.63"));
  CHECK(parse_address_list("2001:db8:8000::/33").contains("2001:db8:ffff::1"));
  CHECK_FALSE(parse_address_list("2001:db8:8000::/33").contains("2001:db8:7fff::1"));
  // 0.0.0.0/0 matches every IPv4 address and no IPv6 one; families never cross.
  CHECK(parse_address_list("0.0.0.0/0").contains("203.0.113.9"));
  CHECK_FALSE(parse_address_list("0.0.0.0/0").contains("2001:db8::1"));
  CHECK_FALSE(parse_address_list("::/0").contains("203.0.113.9"));
  // An IPv4 client seen through a dual-stack socket matches as IPv4.
  CHECK(parse_address_list("127.0.0.1/32").contains("::ffff:127.0.0.1"));
  CHECK_FALSE(parse_address_list("10.0.0.0/8").contains("::ffff:127.0.0.1"));
  // Leading zeros in the prefix length are still decimal.
  CHECK(parse_address_list("10.0.0.0/08").contains("10.1.1.1"));
  CHECK(parse_address_list("2001:DB8::/32").contains("2001:db8::1"));
}

TEST_CASE("address lists: malformed entries are errors, never a wider match") {
  // The bypass this parser exists for: atoi("abc") is 0, and /0 matches everything.
  auto bad = parse_address_list("10.0.0.0/abc");
  CHECK(bad.error == AddressListError::kBadPrefixLength);
  CHECK(bad.bad_entry == "10.0.0.0/abc");
  CHECK_FALSE(bad.contains("10.1.2.3"));
  CHECK_FALSE(bad.contains("192.0.2.1"));
  CHECK(bad.blocks.empty());
  CHECK_FALSE(address_in_list("10.1.2.3", "10.0.0.0/abc"));
  // One bad entry spoils the whole list, wherever it is.
  CHECK_FALSE(parse_address_list("127.0.0.1,10.0.0.0/abc").contains("127.0.0.1"));
  CHECK_FALSE(parse_address_list("10.0.0.0/abc,127.0.0.1").contains("127.0.0.1"));

  for (const char* text :
       {"10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/ 8", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/33",
        "10.0.0.0/999", "10.0.0.0/0008", "10.0.0.0/8/8", "::/129", "::1/1280", "10.0.0.0/0x8"}) {
    CAPTURE(text);
    CHECK(error_of(text) == AddressListError::kBadPrefixLength);
  }
  for (const char* text :
       {"10.0.0", "10.0.0.256", "10.0.0.0.0", "010.0.0.1", " 10.0.0.1", "10.0.0.1 ", "host.example",
        "fe80::1%eth0", "2001:db8:::1", "1:2:3:4:5:6:7:8:9", "/8", "*", "10.0.0.*", "0x0a.0.0.1"}) {
    CAPTURE(text);
    CHECK(error_of(text) == AddressListError::kBadAddress);
  }
  for (const char* text : {"", ",", "10.0.0.0/8,", ",10.0.0.0/8", "10.0.0.0/8,,127.0.0.1"}) {
    CAPTURE(text);
    CHECK(error_of(text) == AddressListError::kEmptyEntry);
  }
  CHECK(error_of("10.0.0.1/8") == AddressListError::kHostBitsSet);
  CHECK(error_of("192.0.2.65/26") == AddressListError::kHostBitsSet);
  CHECK(error_of("2001:db8::1/32") == AddressListError::kHostBitsSet);
  CHECK(error_of("11.0.0.0/7") == AddressListError::kHostBitsSet);
  CHECK(parse_address_list("10.0.0.0/7").contains("11.1.1.1"));
  CHECK(error_of(std::string(60, '1')) == AddressListError::kEntryTooLong);
  // A NUL byte must not end the text early for inet_pton.
  CHECK(error_of(std::string("10.0.0.0\0/abc", 13)) == AddressListError::kBadAddress);
  CHECK(error_of(std::string("10.0.0.0/8\0garbage", 18)) == AddressListError::kBadPrefixLength);
  CHECK(to_string(AddressListError::kBadPrefixLength) == "bad prefix length");
}

TEST_CASE("address lists: the number of entries is bounded") {
  std::string many;
  for (size_t i = 0; i < AddressList::kMaxEntries; ++i)
    many += (many.empty() ? "" : ",") + std::string("10.0.") + std::to_string(i / 256) + "." +
            std::to_string(i % 256);
  auto at_limit = parse_address_list(many);
  REQUIRE(at_limit.ok());
  CHECK(at_limit.contains("10.0.0.255"));
  CHECK(parse_address_list(many + ",10.0.1.0").error == AddressListError::kTooManyEntries);
  CHECK(parse_address_list(many + ",").error == AddressListError::kTooManyEntries);
}
