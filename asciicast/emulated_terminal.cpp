#include "asciicast/emulated_terminal.h"

#include <vterm.h>

#include <algorithm>

namespace castgate::asciicast {
namespace {

// Length of the UTF-8 sequence at `p` (valid UTF-8, at least one byte) if it is a code point
// libvterm 0.1 cannot place (see the header), else 0.
size_t unshowable_at(const unsigned char* p, const unsigned char* end) {
  if (p[0] == 0xc2 && end - p >= 2 && p[1] >= 0x80 && p[1] <= 0x9f) return 2;  // U+0080..U+009F
  if (p[0] == 0xe3 && end - p >= 3) {
    if (p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xaf) return 3;    // U+302A..U+302F
    if (p[1] == 0x82 && (p[2] == 0x99 || p[2] == 0x9a)) return 3;  // U+3099..U+309A
  }
  return 0;
}

// Appends `text` to `out` with the code points unshowable_at() finds taken out, or with C1
// controls (U+0080..U+009F) as their 7-bit form (ESC and 0x40..0x5F) if `c1_as_escape`; false
// (and nothing appended) if there are none.
bool replace_unshowable(std::string_view text, std::string& out, bool c1_as_escape) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  // Every such sequence starts with 0xc2 or 0xe3: most text has neither.
  const auto* first = p;
  while (first < end && ((*first != 0xc2 && *first != 0xe3) || unshowable_at(first, end) == 0))
    ++first;
  if (first == end) return false;
  out.append(text.data(), static_cast<size_t>(first - p));
  for (const auto* q = first; q < end;) {
    if (size_t n = unshowable_at(q, end)) {
      if (n == 2 && c1_as_escape) {
        out.push_back('\x1b');
        out.push_back(static_cast<char>(q[1] - 0x40));
      }
      q += n;
      continue;
    }
    out.push_back(static_cast<char>(*q++));
  }
  return true;
}

int clamp_cols(int cols) {
  return std::max(cols, EmulatedTerminal::kMinCols);
}

int clamp_rows(int rows) {
  return std::max(rows, 2);
}

}  // namespace

int EmulatedTerminal::forward_property(int prop, void* value, void* self) {
  auto* t = static_cast<EmulatedTerminal*>(self);
  return t->on_property_(prop, value, t->owner_);
}

EmulatedTerminal::EmulatedTerminal(int rows, int cols, PropertyHandler on_property, void* owner)
    : on_property_(on_property), owner_(owner), vt_(vterm_new(clamp_rows(rows), clamp_cols(cols))) {
  vterm_set_utf8(vt_.get(), 1);
  vterm_output_set_callback(
      vt_.get(), [](const char*, size_t, void*) {}, nullptr);
  screen_ = vterm_obtain_screen(vt_.get());
  static const VTermScreenCallbacks callbacks = [] {
    VTermScreenCallbacks c{};
    c.settermprop = [](VTermProp prop, VTermValue* val, void* self) {
      return forward_property(prop, val, self);
    };
    return c;
  }();
  vterm_screen_set_callbacks(screen_, &callbacks, this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
}

void EmulatedTerminal::write(std::string_view bytes) {
  // Whole, valid sequences only (an incomplete last one is held for the next call), then
  // without what libvterm cannot place. A C1 control written as UTF-8 is a control to the
  // terminals users have (xterm, VTE): libvterm is given it in its 7-bit form, which it acts on.
  std::string_view text = utf8_.sanitize(bytes, scratch_);
  std::string replaced;
  if (replace_unshowable(text, replaced, true)) text = replaced;
  std::string shown;
  drop_repeats(text, shown);
  if (!shown.empty()) vterm_input_write(vt_.get(), shown.data(), shown.size());
}

void EmulatedTerminal::drop_repeats(std::string_view text, std::string& out) {
  constexpr size_t kMaxHeld = 256;  // a longer CSI is dropped whatever it is
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (escape_ == Escape::kDcsEscape && c >= 0x20 && c != '\\') {
      // ESC and anything but a backslash (ST) ends the string and begins an escape, in libvterm
      // as in xterm: `ESC P ... ESC ( B Password: ` shows the prompt.
      held_.assign(1, '\x1b');
      escape_ = Escape::kEscape;
    } else if (escape_ == Escape::kDcs || escape_ == Escape::kDcsEscape) {  // dropped up to ST
      bool st = escape_ == Escape::kDcsEscape && c == '\\';
      escape_ = c == 0x1b || (escape_ == Escape::kDcsEscape && c < 0x20) ? Escape::kDcsEscape
                                                                         : Escape::kDcs;
      if (st || c == 0x18 || c == 0x1a) escape_ = Escape::kNone;
      continue;
    }
    if (c == 0x1b) {  // starts an escape, and cancels one in progress (as libvterm does)
      held_.assign(1, ch);
      escape_ = Escape::kEscape;
      continue;
    }
    if (escape_ == Escape::kEscape || escape_ == Escape::kCsi) {
      // libvterm executes controls inside a sequence and skips DEL there (and, after ESC,
      // bytes past ASCII), so `ESC NUL [ b`, `ESC [ 5 DEL b` and `ESC U+FFFD [ b` are REP too:
      // none of them ends the sequence here.
      if (c == 0x18 || c == 0x1a) {  // CAN, SUB: the sequence is cancelled
        held_.clear();
        escape_ = Escape::kNone;
        out.push_back(ch);
        continue;
      }
      if (c < 0x20) {
        out.push_back(ch);
        continue;
      }
      if (c == 0x7f || (c >= 0x80 && escape_ == Escape::kEscape)) continue;  // dropped
    }
    switch (escape_) {
      case Escape::kNone:
      case Escape::kDcs:
      case Escape::kDcsEscape:
        out.push_back(ch);
        break;
      case Escape::kEscape:
        if (c < 0x30) {  // an intermediate byte: the escape goes on (`ESC # [ b` is REP)
          if (held_.size() < kMaxHeld) held_.push_back(ch);
        } else if (c == '[') {
          held_.push_back(ch);
          escape_ = Escape::kCsi;
        } else if (c == 'P') {  // DCS: dropped with its string
          held_.clear();
          escape_ = Escape::kDcs;
          out.push_back('\x18');  // but it ends a string libvterm holds (an OSC), as CAN does
        } else {
          out += held_;
          out.push_back(ch);
          held_.clear();
          escape_ = Escape::kNone;
        }
        break;
      case Escape::kCsi:
        if (c < 0x40) {  // parameters (0x30..0x3f) and intermediates (0x20..0x2f)
          if (held_.size() < kMaxHeld) held_.push_back(ch);
        } else {
          // The final byte: REP is dropped, so is a sequence too long to judge.
          // Whatever intermediate bytes came before: libvterm 0.1.4 may still take it for REP.
          bool rep = c == 'b';
          if (!rep && held_.size() < kMaxHeld) {
            out += held_;
            out.push_back(ch);
          }
          held_.clear();
          escape_ = Escape::kNone;
        }
        break;
    }
  }
}

void EmulatedTerminal::resize(int rows, int cols) {
  int old_rows = 0, old_cols = 0;
  vterm_get_size(vt_.get(), &old_rows, &old_cols);
  rows = clamp_rows(rows);
  cols = clamp_cols(cols);
  vterm_set_size(vt_.get(), rows, cols);
  if (rows >= old_rows && cols >= old_cols) return;
  // libvterm 0.1 leaves three positions where they were when the screen loses rows or columns,
  // and reads and writes out of bounds there later:
  //  * it keeps the lower lines by scrolling them up and moves the cursor up as far, wherever it
  //    was: a cursor moved up (CSI A) above them ends above row 0 (then ESC # 6 crashes);
  //  * the scrolling region's top (and the left and right margins) stay past the new edge (then
  //    a line feed or CSI S moves cells past libvterm's buffer);
  //  * the cursor saved by ESC 7 (or on entering the alternate screen) stays past the edge
  //    (then ESC 8 and a character write through a NULL line).
  // So, as xterm does on a resize: the margins are reset to the whole screen and the saved
  // cursor is the current one, put back on the screen in its column. CAN first ends any escape
  // sequence libvterm holds half-read, so these are read as given. (`CSI s` resets the left and
  // right margins when they are enabled, and otherwise saves the cursor, which ESC 7 does next.)
  VTermPos pos;
  vterm_state_get_cursorpos(vterm_obtain_state(vt_.get()), &pos);
  int row = std::clamp(pos.row, 0, rows - 1), col = std::clamp(pos.col, 0, cols - 1);
  std::string reset = "\x18\x1b[r\x1b[s\x1b[" + std::to_string(row + 1) + ";" +
                      std::to_string(col + 1) +
                      "H\x1b"
                      "7";
  vterm_input_write(vt_.get(), reset.data(), reset.size());
}

std::string EmulatedTerminal::shown(std::string_view text) {
  std::string out;
  if (!replace_unshowable(text, out, false)) out.assign(text);
  return out;
}

}  // namespace castgate::asciicast
