// Follows an interactive terminal session the way the user saw it, with a real terminal emulator
// (libvterm), to derive what the user ran and to keep what they typed at password prompts out
// of the record.
//
//  * Commands: when the user presses Enter, the command is the line as it appears on the screen
//    once the shell has echoed it (after history recall, tab completion and line editing), less
//    the prompt that was there when they started typing. Nothing is derived while a full-screen
//    program (alternate screen) runs.
//  * Secrets: if the text before the cursor looks like a password prompt when the user starts
//    typing, their keystrokes up to Enter are replaced by a fixed mask.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

  // Output from the target. Returns commands completed by this output (the shell echoed the
  // line and moved on).
  std::vector<std::string> output(std::string_view bytes);
  void resize(int cols, int rows);
  // Keystrokes from the user. Returns what may be recorded as input: the same bytes, except that
  // a line typed at a password prompt is held back and replaced by kMask at Enter.
  std::string input(std::string_view bytes);
  bool in_secret() const { return secret_; }
  bool alt_screen() const { return alt_screen_; }

  // True if `text` (what precedes the cursor) looks like a prompt for a secret.
  static bool looks_like_secret_prompt(std::string_view text);

 private:
  struct Pending {
    std::string prompt;  // the screen text before the cursor when typing started
    std::string typed;   // printable keystrokes, if the screen never shows the line
  };
  std::string cursor_line(bool up_to_cursor) const;
  std::string complete(const Pending& p) const;
  static int on_settermprop(int prop, void* value, void* self);

  VTerm* vt_ = nullptr;
  VTermScreen* screen_ = nullptr;
  int cols_, rows_;
  bool alt_screen_ = false;
  bool line_started_ = false;  // the user typed something since the last Enter
  bool secret_ = false;
  std::string prompt_;           // of the line being typed
  std::string typed_;            // printable bytes of the line being typed
  std::deque<Pending> pending_;  // Enter pressed, waiting for the echo
};

}  // namespace castgate::asciicast
