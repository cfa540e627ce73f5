// A recorded terminal shown on the analyst's terminal: the channel's output is fed to a terminal
// emulator (libvterm) sized like the recorded terminal, and what the emulated screen holds is
// drawn with only its printable characters and castgate's own cursor-positioning and erase
// sequences. The recorded bytes never reach the analyst's terminal: a user controls them and
// could otherwise set its title, write its clipboard (OSC 52), send it DCS strings, and so on.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/emulated_terminal.h"

struct VTerm;
struct VTermScreen;

namespace castgate::player {

struct TerminalSize {
  int cols = 80;
  int rows = 24;
};

// What the status line says. Recorded strings are made terminal-safe when it is drawn.
struct StatusLine {
  std::string user_name, user_id;
  std::string source_ip, target, login;
  std::string session;
  int channel = -1;
  std::string state;  // "live", "ended", "paused", "1x"...: castgate's own words
  std::string note;   // shown after the state, e.g. the last marker (recorded: made safe)
};

// The status line as one line of text, every recorded string through terminal_safe().
std::string status_text(const StatusLine& status);

class ScreenView {
 public:
  // Recorded sizes are clamped to this: a forged "r" event of 100000x100000 must not make the
  // player allocate gigabytes.
  static constexpr int kMaxCols = 1000;
  static constexpr int kMaxRows = 500;
  static constexpr int kMaxCells = 250000;  // castgate's own limit on a terminal's size

  ScreenView(int cols, int rows);
  ~ScreenView();
  ScreenView(const ScreenView&) = delete;
  ScreenView& operator=(const ScreenView&) = delete;

  // A fresh, empty terminal of this size (a new session or channel).
  void reset(int cols, int rows);
  void resize(int cols, int rows);
  // The text of an "r" event, "COLSxROWS"; false if it is not one.
  bool resize(std::string_view cols_x_rows);
  // Output from the target ("o" events), as recorded.
  void output(std::string_view text);
  int cols() const { return cols_; }
  int rows() const { return rows_; }

  // Row `row` of the emulated screen as printable UTF-8: control and C1 characters, and code
  // points that are no characters, become spaces or U+FFFD; at most `max_cols` columns (a wide
  // character that would not fit whole becomes a space).
  // With `anchor_row` (1-based, on the analyst's terminal), each character that is not ASCII is
  // followed by a cursor move to where the emulator put the next cell: a terminal that draws it
  // wider or narrower than libvterm does cannot shift the rest of the row.
  std::string row_text(int row, int max_cols, int anchor_row = 0) const;

  // The bytes that make the analyst's terminal (of size `analyst`) show the emulated screen,
  // clipped to it, with `status` on its last row. Only the rows that changed since the last
  // frame are drawn; invalidate() makes the next frame draw everything (after the analyst's
  // terminal was resized or cleared).
  std::string frame(TerminalSize analyst, const std::string& status);
  void invalidate() { drawn_.clear(); }

 private:
  std::unique_ptr<asciicast::EmulatedTerminal> terminal_;
  int cols_, rows_;
  bool cursor_visible_ = true;
  std::vector<std::string> drawn_;  // what each analyst row shows now
  TerminalSize drawn_size_{0, 0};
  static int on_settermprop(int prop, void* value, void* self);
};

// At most one frame every `interval`: a flood of output must not make the analyst's terminal
// fall behind (the screen is drawn as it is at each frame, whatever happened in between).
class FramePacer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FramePacer(std::chrono::milliseconds interval = std::chrono::milliseconds(33))
      : interval_(interval) {}
  bool due(Clock::time_point now) const { return now - last_ >= interval_; }
  void drawn(Clock::time_point now) { last_ = now; }
  // Milliseconds until the next frame may be drawn (0 if it may be now).
  int wait_ms(Clock::time_point now) const;

 private:
  std::chrono::milliseconds interval_;
  Clock::time_point last_{};
};

// castgate's own sequences, the only ones a frame contains besides CUP (ESC [ row ; col H).
namespace seq {
inline constexpr std::string_view kClearScreen = "\x1b[H\x1b[2J";
inline constexpr std::string_view kEraseLine = "\x1b[K";
inline constexpr std::string_view kHideCursor = "\x1b[?25l";
inline constexpr std::string_view kShowCursor = "\x1b[?25h";
inline constexpr std::string_view kReverse = "\x1b[7m";
inline constexpr std::string_view kNormal = "\x1b[0m";
// Autowrap off while castgate draws (a character wider on the analyst's terminal than the
// emulator thought must not wrap onto the next row), on again when it is done.
inline constexpr std::string_view kNoWrap = "\x1b[?7l";
inline constexpr std::string_view kWrap = "\x1b[?7h";
std::string cursor_to(int row, int col);  // 1-based
}  // namespace seq

}  // namespace castgate::player
