#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/user_certificate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  castgate::ParsedCertificate cert;
  std::string error;
  if (castgate::parse_certificate(blob, cert, error)) castgate::verify_certificate_signature(cert);
  return 0;
}
