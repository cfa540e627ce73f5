// Terminal output from a target and keystrokes from a user are untrusted; the tracker must never
// crash, and a line typed at a password prompt must never come back unmasked. The same output also
// goes to an EmulatedTerminal of the same size, whose cursor must stay on the screen (libvterm
// 0.1 moves it left of column 0 for a C1 control written as UTF-8, and above row 0 when a screen
// loses rows, without crashing there and then). libvterm is not instrumented:
// tests/fuzz/terminal.dict has the bytes that matter to it.
#include <vterm.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "asciicast/emulated_terminal.h"
#include "asciicast/terminal_tracker.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  int cols = 2 + data[0] % 120, rows = 2 + data[1] % 50;
  castgate::asciicast::TerminalTracker t(cols, rows);
  castgate::asciicast::EmulatedTerminal e(
      rows, cols, [](int, void*, void*) { return 1; }, nullptr);
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  while (!in.empty()) {
    uint8_t op = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    size_t n = op % 48;
    auto chunk = in.substr(0, n);
    in.remove_prefix(chunk.size());
    if (op & 0x80) {
      t.input(chunk);
    } else if (op & 0x40) {
      t.output(chunk);
      e.write(chunk);
      VTermPos pos;
      vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
      int r = 0, c = 0;
      vterm_get_size(e.vt(), &r, &c);
      if (pos.row < 0 || pos.row >= r || pos.col < 0 || pos.col >= c) std::abort();
    } else if (op == 0) {
      // A window-change: the size from the two bytes after the op (larger and smaller, as
      // a window's are: libvterm's defects show when a screen loses rows or columns).
      int new_cols = 1, new_rows = 1;
      if (in.size() >= 2) {
        new_cols = 1 + static_cast<uint8_t>(in[0]) % 130;
        new_rows = 1 + static_cast<uint8_t>(in[1]) % 60;
        in.remove_prefix(2);
      }
      t.resize(new_cols, new_rows);
      e.resize(new_rows, new_cols);
    } else {
      // A password prompt, then a secret that must not reappear. (In ASCII: with a line-drawing
      // character set the screen shows no "Password:", and the user saw none either.)
      t.output("\x1b(B\x0f\r\nPassword: ");
      t.take_recordable_input();
      t.input("S3cr3tValue");
      t.input("\r");
      if (t.take_recordable_input().find("S3cr3tValue") != std::string::npos) std::abort();
    }
    t.take_recordable_input();
  }
  t.finish();
  return 0;
}
