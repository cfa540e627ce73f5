#include "oidc/qr.h"

#include <qrencode.h>

#include <memory>

namespace castgate::oidc {

std::string ascii_qr(const std::string& text) {
  std::unique_ptr<QRcode, decltype(&QRcode_free)> code(
      QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, 1), &QRcode_free);
  if (!code) return {};
  const int quiet = 2;
  int w = code->width;
  std::string out;
  auto light_row = [&] {
    out += std::string(static_cast<size_t>((w + 2 * quiet) * 2), ' ') + "\n";
  };
  for (int i = 0; i < quiet; ++i) light_row();
  for (int y = 0; y < w; ++y) {
    out += std::string(quiet * 2, ' ');
    for (int x = 0; x < w; ++x) out += (code->data[y * w + x] & 1) ? "##" : "  ";
    out += std::string(quiet * 2, ' ') + "\n";
  }
  for (int i = 0; i < quiet; ++i) light_row();
  return out;
}

}  // namespace castgate::oidc
