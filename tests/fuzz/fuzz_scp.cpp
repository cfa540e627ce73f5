#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "asciicast/scp_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  auto cmd = castgate::asciicast::parse_scp_command(in.substr(0, in.find('\n')));
  castgate::asciicast::ScpCommand c;
  c.sink = data[0] & 1;
  c.recursive = data[0] & 2;
  c.directory = data[0] & 4;
  c.path = "/base";
  castgate::asciicast::ScpMetadataParser p(cmd ? *cmd : c);
  std::vector<castgate::asciicast::FileOperation> out;
  for (size_t i = 0; i < in.size(); i += 7) {
    auto chunk = in.substr(i, 7);
    (i / 7) % 3 ? p.from_client(chunk, out) : p.from_server(chunk, out);
  }
  return 0;
}
