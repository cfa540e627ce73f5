// A libvterm terminal set up the one way castgate uses it, in the recorder (TerminalTracker) and
// in the player (ScreenView): UTF-8, the alternate screen enabled, answers to the recorded
// program's queries (device attributes, cursor position) dropped, property changes (the
// alternate screen, cursor visibility, ...) handed to its owner.
//
// Output from a target is untrusted: it reaches libvterm only through write(), never through
// vterm_input_write() directly. libvterm 0.1 gives a few code points a width that breaks its own
// screen (it writes through a NULL cell pointer, or moves the cursor to negative columns):
//  * U+302A..U+302F and U+3099..U+309A are both combining (merged into the glyph before them)
//    and wide (2 columns), so a base character followed by them makes a glyph 1 + 2n columns
//    wide; once that exceeds the terminal's width, putglyph in screen.c writes to column `cols`,
//    a NULL cell: "A" U+302A on a 2-column terminal, "A" and 40 of them on an 80-column one.
//  * U+0080..U+009F (C1 controls written as UTF-8) are printed with width -1: the cursor moves
//    left, past column 0.
//  * A screen that loses rows or columns leaves the cursor (above row 0), the scrolling region
//    and the saved cursor past its edges, where they are read and written out of bounds later.
//    resize() puts them back on the screen (see there).
// write() takes the marks out (a terminal gives none of them a column of its own), gives libvterm
// the C1 controls in their 7-bit form (ESC and 0x40..0x5F: controls, as xterm and VTE take them in
// UTF-8), and hands it only whole, valid UTF-8 sequences (libvterm's decoder resumes a sequence
// across a control byte, so a broken one could still assemble into one of the code points above).
#pragma once

#include <vterm.h>

#include <memory>
#include <string>
#include <string_view>

#include "asciicast/utf8.h"
#include "common/c_handle.h"

namespace castgate::asciicast {

class EmulatedTerminal {
 public:
  // libvterm writes a wide character's second column without checking it is on the screen: a
  // terminal is at least this wide.
  static constexpr int kMinCols = 2;

  // on_property(prop, value, owner): libvterm's settermprop (VTermProp, VTermValue*) for `owner`.
  using PropertyHandler = int (*)(int prop, void* value, void* owner);

  EmulatedTerminal(int rows, int cols, PropertyHandler on_property, void* owner);
  EmulatedTerminal(const EmulatedTerminal&) = delete;
  EmulatedTerminal& operator=(const EmulatedTerminal&) = delete;

  // Output of the terminal's program (untrusted), in chunks of any size.
  void write(std::string_view bytes);
  void resize(int rows, int cols);

  // `text` (valid UTF-8) less the code points write() takes out or turns into controls: what the
  // screen can show of it.
  static std::string shown(std::string_view text);

  VTerm* vt() const { return vt_.get(); }
  VTermScreen* screen() const { return screen_; }  // owned by vt()

 private:
  static int forward_property(int prop, void* value, void* self);

  PropertyHandler on_property_;
  void* owner_;
  std::unique_ptr<VTerm, CFree<vterm_free>> vt_;
  VTermScreen* screen_;
  // Sequences libvterm 0.1.4 mishandles are taken out: REP (CSI Ps b) repeats the last glyph by
  // its width, which is 0 before any glyph, for ever (`printf '\e[b'` as a target's first output
  // hung the worker); a DCS string (ESC P ... ST) such as DECRQSS `ESC P $ q ) ESC \` makes it
  // print a NULL string. Neither changes what the screen shows otherwise. A sequence that might
  // be REP is held until its final byte.
  void drop_repeats(std::string_view text, std::string& out);
  enum class Escape { kNone, kEscape, kCsi, kDcs, kDcsEscape };
  Escape escape_ = Escape::kNone;
  std::string held_;  // ESC, or ESC [ and its parameters, not yet given to libvterm

  Utf8Sanitizer utf8_;
  std::string scratch_;
};

}  // namespace castgate::asciicast
