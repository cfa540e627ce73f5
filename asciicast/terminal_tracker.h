// Follows an interactive terminal session the way the user saw it, with a real terminal emulator
// (libvterm), to derive what the user ran and to keep what they typed at password prompts out
// of the record.
//
//  * Commands: when the user presses Enter, the command is the line as it appears on the screen
//    once the shell has echoed it (after history recall, tab completion and line editing), less
//    the prompt that was there when they started typing. Nothing is derived while a full-screen
//    program (alternate screen) runs.
//  * Secrets: if the text before the cursor looks like a password prompt when the user starts
//    typing (on the screen, or as printed since the last line break when the screen is too small
//    to hold it), their keystrokes up to Enter are replaced by a fixed mask. Keystrokes are held
//    until the terminal shows a response; a line that got no response at all before Enter (typed
//    with echo off, e.g. `read -s`) is masked too.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/emulated_terminal.h"

struct VTerm;
struct VTermScreen;

namespace castgate::asciicast {

class TerminalTracker {
 public:
  static constexpr std::string_view kMask = "********";

  TerminalTracker(int cols, int rows);
  ~TerminalTracker();
  TerminalTracker(const TerminalTracker&) = delete;
  TerminalTracker& operator=(const TerminalTracker&) = delete;

  // Output from the target. Returns the commands whose echo this output completed.
  std::vector<std::string> output(std::string_view bytes);
  void resize(int cols, int rows);
  // Keystrokes from the user. They become recordable (take_recordable_input) once the terminal
  // has echoed them; a line at a password prompt, or one the terminal never echoed (echo off,
  // e.g. `read -s`), is recorded as kMask instead.
  void input(std::string_view bytes);
  // Input that may be recorded now. Call after input() and output().
  std::string take_recordable_input();
  // The channel ended: whatever is still held is recorded masked (it was never seen echoed).
  void finish();
  bool in_secret() const { return secret_; }
  bool alt_screen() const { return alt_screen_; }

  // True if `text` (what precedes the cursor) looks like a prompt for a secret.
  static bool looks_like_secret_prompt(std::string_view text);

 private:
  // A line the user ended with Enter, waiting for its echo.
  struct Line {
    std::string prompt;  // the screen text before the cursor when typing started
    std::string typed;   // printable keystrokes (without cursor-key sequences)
    std::string held;    // the raw keystrokes, not yet recorded
  };
  std::string cursor_line(bool up_to_cursor) const;
  // The command, once the screen shows the echo of `line`; nullopt while it does not.
  std::optional<std::string> complete(const Line& line) const;
  bool echo_visible(const std::string& typed) const;
  void release(Line& line, bool masked);
  void follow_line_tail(std::string_view bytes);
  void follow_tail_byte(unsigned char c);
  // The text before the cursor, on the screen or (where the screen cannot hold it) as printed,
  // looks like a prompt for a secret.
  bool prompt_asks_for_secret() const;
  static int on_settermprop(int prop, void* value, void* self);

  std::unique_ptr<EmulatedTerminal> terminal_;
  int cols_, rows_;
  bool alt_screen_ = false;
  bool secret_ = false;        // the current line is typed at a password prompt
  bool line_started_ = false;  // the user typed something since the last Enter
  int escape_ = 0;             // inside an escape sequence typed by the user (cursor keys)
  Line current_;
  std::deque<Line> pending_;  // ended with Enter, echo not seen yet
  int pending_newlines_ = 0;  // output newlines that did not complete the oldest pending line
  std::string recordable_;
  // The text the program printed since its last line break, without controls and escape
  // sequences: a prompt as written, for a screen too small to show it (on a 2-row terminal
  // "Password: " wraps and scrolls off as it is printed).
  std::string line_tail_;
  bool tail_c2_ = false;  // the last byte was 0xc2: a C1 control in UTF-8 may follow
  enum class TailEscape {
    kNone,
    kEscape,
    kCsi,
    kString,
    kStringEscape
  } tail_escape_ = TailEscape::kNone;
};

}  // namespace castgate::asciicast
