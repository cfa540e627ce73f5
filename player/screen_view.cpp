#include "player/screen_view.h"

#include "asciicast/utf8.h"

#include <vterm.h>

#include <algorithm>

#include "player/terminal_text.h"

namespace castgate::player {
namespace {

// A code point a terminal only displays: not a C0 or C1 control or DEL, not a surrogate, not
// above U+10FFFF (libvterm decodes up to six-byte sequences), and not an invisible format
// character that reorders or hides text (bidi overrides and isolates, zero-width ones).
bool displayable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) return false;
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  if (cp == 0xad || cp == 0x61c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
      (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
      (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f))
    return false;
  return cp <= 0x10ffff;
}

// The first characters of `text` that fit in `cols` columns.
std::string clip(std::string_view text, int cols) {
  std::string out;
  int used = 0;
  for (size_t i = 0; i < text.size();) {
    auto b = static_cast<unsigned char>(text[i]);
    size_t len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    len = std::min(len, text.size() - i);
    int w = b >= 0xe1 ? 2 : 1;
    if (used + w > cols) break;
    out.append(text.substr(i, len));
    used += w;
    i += len;
  }
  out.append(static_cast<size_t>(std::max(0, cols - used)), ' ');
  return out;
}

int clamp_cols(int cols) {
  return std::clamp(cols, 2, ScreenView::kMaxCols);
}
int clamp_rows(int rows) {
  return std::clamp(rows, 2, ScreenView::kMaxRows);
}

}  // namespace

std::string seq::cursor_to(int row, int col) {
  return "\x1b[" + std::to_string(row) + ";" + std::to_string(col) + "H";
}

std::string status_text(const StatusLine& s) {
  // The state and the note first: a narrow terminal clips the end of the line.
  std::string out = "[" + s.state + (s.note.empty() ? "" : " | " + terminal_safe(s.note)) + "] ";
  std::string who = s.user_name.empty() ? s.user_id : s.user_name;
  if (!s.user_name.empty() && !s.user_id.empty() && s.user_id != s.user_name)
    who += " (" + s.user_id + ")";
  out += who.empty() ? "(no identity yet)" : terminal_safe(who);
  if (!s.source_ip.empty()) out += " from " + terminal_safe(s.source_ip);
  if (!s.target.empty()) out += " to " + terminal_safe(s.target);
  if (!s.login.empty()) out += " as " + terminal_safe(s.login);
  if (!s.session.empty()) out += " | session " + terminal_safe(s.session);
  if (s.channel >= 0) out += " ch " + std::to_string(s.channel);
  return out;
}

ScreenView::ScreenView(int cols, int rows) : cols_(clamp_cols(cols)), rows_(clamp_rows(rows)) {
  reset(cols, rows);
}

ScreenView::~ScreenView() = default;

int ScreenView::on_settermprop(int prop, void* value, void* self) {
  auto* view = static_cast<ScreenView*>(self);
  if (prop == VTERM_PROP_CURSORVISIBLE)
    view->cursor_visible_ = static_cast<VTermValue*>(value)->boolean != 0;
  return 1;  // every other property (the title above all) is ignored
}

void ScreenView::reset(int cols, int rows) {
  cols_ = clamp_cols(cols);
  rows_ = clamp_rows(rows);
  if (cols_ * rows_ > kMaxCells) rows_ = std::max(2, kMaxCells / cols_);
  terminal_ = std::make_unique<asciicast::EmulatedTerminal>(rows_, cols_, &on_settermprop, this);
  cursor_visible_ = true;
  invalidate();
}

void ScreenView::resize(int cols, int rows) {
  cols = clamp_cols(cols);
  rows = clamp_rows(rows);
  // At most as many cells as castgate lets a session's terminal have (every resize costs the
  // emulator time in proportion); the same size again costs nothing.
  if (cols * rows > kMaxCells) rows = std::max(2, kMaxCells / cols);
  if (cols == cols_ && rows == rows_) return;
  cols_ = cols;
  rows_ = rows;
  terminal_->resize(rows_, cols_);
  invalidate();
}

bool ScreenView::resize(std::string_view text) {
  // Digits only, saturating: "99999999999x1" is a (huge) size to clamp, not one that wraps.
  auto number = [](std::string_view digits, int max, int& value) {
    if (digits.empty()) return false;
    long long n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      n = std::min<long long>(n * 10 + (c - '0'), max);
    }
    value = static_cast<int>(n);
    return true;
  };
  size_t x = text.find('x');
  int cols = 0, rows = 0;
  if (x == std::string_view::npos || !number(text.substr(0, x), kMaxCols, cols) ||
      !number(text.substr(x + 1), kMaxRows, rows))
    return false;
  resize(cols, rows);
  return true;
}

void ScreenView::output(std::string_view text) {
  terminal_->write(text);
}

std::string ScreenView::row_text(int row, int max_cols, int anchor_row) const {
  std::string out;
  int limit = std::min(max_cols, cols_);
  for (int col = 0; col < limit;) {
    VTermScreenCell cell;
    if (!vterm_screen_get_cell(terminal_->screen(), VTermPos{row, col}, &cell)) break;
    int width = cell.width > 0 ? cell.width : 1;
    if (col + width > limit) {
      out.append(static_cast<size_t>(limit - col), ' ');
      break;
    }
    if (cell.chars[0] == 0 || cell.chars[0] == ' ') {
      out.append(static_cast<size_t>(width), ' ');
    } else if (!displayable(cell.chars[0])) {
      // A control character cannot be in a cell; anything odd still shows as U+FFFD, not as
      // itself.
      out += "\xef\xbf\xbd";
      if (width == 2) out += ' ';
    } else {
      for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i]; ++i)
        if (displayable(cell.chars[i])) asciicast::append_utf8(out, cell.chars[i]);
      if (anchor_row > 0 && cell.chars[0] >= 0x80)
        out += seq::cursor_to(anchor_row, col + width + 1);
    }
    col += width;
  }
  return out;
}

std::string ScreenView::frame(TerminalSize analyst, const std::string& status) {
  analyst.cols = std::max(analyst.cols, 1);
  analyst.rows = std::max(analyst.rows, 1);
  std::string out;
  if (analyst.cols != drawn_size_.cols || analyst.rows != drawn_size_.rows || drawn_.empty()) {
    out += seq::kClearScreen;
    drawn_.assign(static_cast<size_t>(analyst.rows), std::string());
    drawn_size_ = analyst;
  }
  out += seq::kHideCursor;
  out += seq::kNoWrap;
  // The last row is the status line; the recorded screen gets the rows above it (clipped).
  int screen_rows = analyst.rows - 1;
  for (int row = 0; row < screen_rows; ++row) {
    std::string text = row < rows_ ? row_text(row, analyst.cols, row + 1) : std::string();
    while (!text.empty() && text.back() == ' ') text.pop_back();
    auto& drawn = drawn_[static_cast<size_t>(row)];
    if (text == drawn) continue;
    out += seq::cursor_to(row + 1, 1);
    out += text;
    out += seq::kEraseLine;
    drawn = std::move(text);
  }
  // One column short of the edge: printing into the last column of the last row would make
  // some terminals scroll.
  // Drawn every frame: nothing the recording drew can stand for it.
  std::string line = clip(status, std::max(0, analyst.cols - 1));
  out += seq::cursor_to(analyst.rows, 1);
  out += seq::kReverse;
  out += line;
  out += seq::kNormal;
  out += seq::kEraseLine;
  drawn_[static_cast<size_t>(analyst.rows - 1)] = std::move(line);
  VTermPos cursor;
  vterm_state_get_cursorpos(vterm_obtain_state(terminal_->vt()), &cursor);
  if (cursor_visible_ && cursor.row < screen_rows && cursor.col < analyst.cols) {
    out += seq::cursor_to(cursor.row + 1, cursor.col + 1);
    out += seq::kShowCursor;
  } else {
    out += seq::cursor_to(analyst.rows, 1);
  }
  return out;
}

int FramePacer::wait_ms(Clock::time_point now) const {
  auto left = interval_ - std::chrono::duration_cast<std::chrono::milliseconds>(now - last_);
  return static_cast<int>(std::max<long long>(0, left.count()));
}

}  // namespace castgate::player
