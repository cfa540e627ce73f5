// User certificates come from whoever connects: the wire format, the CA signature, and the
// source-address critical option (a CIDR list read strictly, as OpenSSH reads it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/presented_certificate.h"
#include "gateway/user_certificate_signer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  if (auto cert = castgate::parse_certificate(blob)) {
    castgate::verify_certificate_signature(*cert);
    for (const auto& [name, value] : cert->critical_options)
      if (name == "source-address") castgate::parse_address_list(value);
  }
  // The same bytes as a source-address list: a well-formed list never matches when the client's
  // address is not inside it, and a malformed one never matches at all.
  auto list = castgate::parse_address_list(blob.substr(0, 2048));
  if (!list.ok() && list.contains("127.0.0.1")) std::abort();
  if (list.ok() && list.blocks.size() > castgate::AddressList::kMaxEntries) std::abort();
  return 0;
}
