// The SFTP stream between user and target is untrusted in both directions.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "asciicast/sftp_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  castgate::asciicast::SftpMetadataParser p;
  std::vector<castgate::asciicast::FileOperation> out;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Alternate directions in chunks whose sizes come from the input itself.
  bool client = true;
  while (!in.empty()) {
    size_t n = 1 + static_cast<uint8_t>(in[0]) % 64;
    in.remove_prefix(1);
    auto chunk = in.substr(0, n);
    in.remove_prefix(chunk.size());
    client ? p.from_client(chunk, out) : p.from_server(chunk, out);
    client = !client;
  }
  p.finish(out);
  return 0;
}
