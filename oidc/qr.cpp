#include "oidc/qr.h"

#include <qrencode.h>

#include <memory>

#include "common/c_handle.h"

namespace castgate::oidc {

std::string terminal_qr(const std::string& text, int max_lines) {
  std::unique_ptr<QRcode, CFree<QRcode_free>> code(
      QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, 1));
  if (!code) return {};
  constexpr int kQuiet = 2;
  const int w = code->width, size = w + 2 * kQuiet;
  if ((size + 1) / 2 > max_lines) return {};
  // Inside the code: the module's colour; the quiet zone is light; below the last row (an odd
  // size) is the terminal's own background.
  auto light = [&](int x, int y) {
    if (y >= size) return false;
    int mx = x - kQuiet, my = y - kQuiet;
    if (mx < 0 || my < 0 || mx >= w || my >= w) return true;
    return (code->data[my * w + mx] & 1) == 0;
  };
  std::string out;
  for (int y = 0; y < size; y += 2) {
    for (int x = 0; x < size; ++x) {
      bool top = light(x, y), bottom = light(x, y + 1);
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += "\n";
  }
  return out;
}

}  // namespace castgate::oidc
