#include "asciicast/terminal_tracker.h"

#include "asciicast/utf8.h"

#include <regex.h>
#include <vterm.h>

#include <algorithm>
#include <mutex>

#include "common/text.h"

namespace castgate::asciicast {
namespace {

constexpr size_t kMaxPending = 64;
constexpr int kMaxNewlinesPerPending = 64;
constexpr size_t kMaxTyped = 4096;

// Case-insensitive prompts that ask for something secret, at the very end of the text before the
// cursor: "Password:", "[sudo] password for alice:", "Enter passphrase for key '...':",
// "Enter PIN for ...:", "Verification code:", "Token:", "Kennwort:".
class SecretPromptPattern {
 public:
  SecretPromptPattern() {
    ok_ = regcomp(&re_,
                  "(pass(word|phrase|code)|pass phrase|\\<pin\\>|\\<otp\\>|one-time|"
                  "verification code|\\<token\\>|\\<secret\\>|kennwort|mot de passe|"
                  "contrase|senha|parol)[^:\n]{0,80}:[[:space:]]*$",
                  REG_EXTENDED | REG_ICASE | REG_NOSUB) == 0;
  }
  ~SecretPromptPattern() {
    if (ok_) regfree(&re_);
  }
  bool matches(std::string_view text) const {
    // When the pattern cannot be compiled, treat every prompt as secret: fail closed.
    if (!ok_) return true;
    // regexec sees the text up to its first NUL ("Password: " written with its terminating
    // NUL is a prompt); the test below must see the same.
    text = text.substr(0, text.find('\0'));
    // Every match ends in ':' and white space ([[:space:]] in the C locale castgate runs in):
    // most text does not, and is answered without the regex (it runs on every chunk of output).
    size_t last = text.find_last_not_of(" \t\n\v\f\r");
    if (last == std::string_view::npos || text[last] != ':') return false;
    return regexec(&re_, std::string(text).c_str(), 0, nullptr, 0) == 0;
  }

 private:
  regex_t re_{};
  bool ok_ = false;
};

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

bool TerminalTracker::looks_like_secret_prompt(std::string_view text) {
  static const SecretPromptPattern pattern;
  // Only the end of the line matters; keep the regex input short.
  if (text.size() > 256) text = text.substr(text.size() - 256);
  return pattern.matches(text);
}

int TerminalTracker::on_settermprop(int prop, void* value, void* self) {
  auto* t = static_cast<TerminalTracker*>(self);
  if (prop == VTERM_PROP_ALTSCREEN) t->alt_screen_ = static_cast<VTermValue*>(value)->boolean != 0;
  return 1;
}

TerminalTracker::TerminalTracker(int cols, int rows)
    : cols_(std::clamp(cols, 2, 1000)), rows_(std::clamp(rows, 2, 1000)) {
  terminal_ = std::make_unique<EmulatedTerminal>(rows_, cols_, &on_settermprop, this);
}

TerminalTracker::~TerminalTracker() = default;

void TerminalTracker::resize(int cols, int rows) {
  cols_ = std::clamp(cols, 2, 1000);
  rows_ = std::clamp(rows, 2, 1000);
  terminal_->resize(rows_, cols_);
}

// The logical line holding the cursor: rows filled to the last column continue on the next row
// (libvterm 0.1 does not say which rows were wrapped, a full row is the best sign).
std::string TerminalTracker::cursor_line(bool up_to_cursor) const {
  VTermState* state = vterm_obtain_state(terminal_->vt());
  VTermPos cursor;
  vterm_state_get_cursorpos(state, &cursor);
  auto row_full = [&](int row) {
    VTermScreenCell cell;
    VTermPos p{row, cols_ - 1};
    return vterm_screen_get_cell(terminal_->screen(), p, &cell) && cell.chars[0] != 0 &&
           cell.chars[0] != ' ';
  };
  int first = cursor.row;
  while (first > 0 && row_full(first - 1)) --first;
  int last = cursor.row;
  if (!up_to_cursor)
    while (last + 1 < rows_ && row_full(last)) ++last;
  std::string text;
  for (int row = first; row <= last; ++row) {
    int end_col = (up_to_cursor && row == cursor.row) ? cursor.col : cols_;
    std::string row_text;
    for (int col = 0; col < end_col;) {
      VTermScreenCell cell;
      VTermPos p{row, col};
      if (!vterm_screen_get_cell(terminal_->screen(), p, &cell)) break;
      if (cell.chars[0] == 0) {
        row_text += ' ';
      } else {
        for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i]; ++i)
          append_utf8(row_text, cell.chars[i]);
      }
      col += cell.width > 0 ? cell.width : 1;
    }
    text += (up_to_cursor && row == cursor.row) ? row_text : rtrim(row_text);
  }
  return text;
}

// The last keystrokes of `typed` as the screen shows them (without what the emulator leaves out).
static std::string tail_of(const std::string& typed) {
  std::string shown = EmulatedTerminal::shown(typed);
  return shown.size() > 3 ? shown.substr(shown.size() - 3) : shown;
}

bool TerminalTracker::echo_visible(const std::string& typed) const {
  return typed.empty() || cursor_line(false).find(tail_of(typed)) != std::string::npos;
}

std::optional<std::string> TerminalTracker::complete(const Line& l) const {
  std::string line = cursor_line(false);
  // The newline must end the echo of this line: its last keystrokes have to be on it.
  if (!l.typed.empty() && line.find(tail_of(l.typed)) == std::string::npos) return std::nullopt;
  std::string_view command = line;
  if (!l.prompt.empty() && starts_with(line, l.prompt)) {
    command.remove_prefix(l.prompt.size());
  } else if (size_t at =
                 l.typed.empty() ? std::string::npos : line.find(EmulatedTerminal::shown(l.typed));
             at != std::string::npos) {
    // Typed before this prompt appeared (ahead of the shell, pasted with the line that changed
    // the prompt): the line from what was typed.
    command.remove_prefix(at);
  }
  // Otherwise the whole line, prompt and all: a command that went unseen because the prompt
  // changed under it would be a way around the alert rules.
  return std::string(trim(command));
}

void TerminalTracker::release(Line& line, bool masked) {
  if (masked) {
    recordable_ += kMask;
    if (!line.held.empty() && (line.held.back() == '\r' || line.held.back() == '\n'))
      recordable_ += line.held.back();
  } else {
    recordable_ += line.held;
  }
  line.held.clear();
}

void TerminalTracker::follow_line_tail(std::string_view bytes) {
  constexpr size_t kMaxTail = 256;  // what looks_like_secret_prompt reads
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (tail_c2_) {  // a C1 control written as UTF-8 is the control, as EmulatedTerminal gives it
      tail_c2_ = false;
      if (c >= 0x80 && c <= 0x9f) {
        follow_tail_byte(0x1b);
        follow_tail_byte(static_cast<unsigned char>(c - 0x40));
        continue;
      }
      follow_tail_byte(0xc2);
    }
    if (c == 0xc2 && tail_escape_ != TailEscape::kCsi) {
      tail_c2_ = true;
      continue;
    }
    follow_tail_byte(c);
  }
  if (line_tail_.size() > 2 * kMaxTail) line_tail_.erase(0, line_tail_.size() - kMaxTail);
}

void TerminalTracker::follow_tail_byte(unsigned char c) {
  if (tail_escape_ == TailEscape::kStringEscape && c != '\\') {
    tail_escape_ = TailEscape::kEscape;  // ESC and anything but ST: the string ends there
  }
  switch (tail_escape_) {
    case TailEscape::kEscape:
      if (c == '[') {
        tail_escape_ = TailEscape::kCsi;
      } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
        tail_escape_ = TailEscape::kString;  // OSC, DCS, SOS, PM, APC: up to BEL or ST
      } else if (c != 0x1b && (c < 0x20 || c > 0x2f)) {
        tail_escape_ = TailEscape::kNone;  // the final byte (intermediates come before it)
      }
      return;
    case TailEscape::kCsi:
      if (c >= 0x40 && c <= 0x7e) tail_escape_ = TailEscape::kNone;
      if (c == 0x18 || c == 0x1a) tail_escape_ = TailEscape::kNone;
      return;
    case TailEscape::kString:
      if (c == 0x07 || c == 0x18 || c == 0x1a) tail_escape_ = TailEscape::kNone;
      if (c == 0x1b) tail_escape_ = TailEscape::kStringEscape;
      return;
    case TailEscape::kStringEscape:  // ST
      tail_escape_ = TailEscape::kNone;
      return;
    case TailEscape::kNone:
      break;
  }
  if (c == '\r' || c == '\n') {
    line_tail_.clear();
  } else if (c == 0x1b) {
    tail_escape_ = TailEscape::kEscape;
  } else if (c == 0x08) {  // backspace: what follows overwrites the last character
    while (!line_tail_.empty() && (static_cast<unsigned char>(line_tail_.back()) & 0xc0) == 0x80)
      line_tail_.pop_back();
    if (!line_tail_.empty()) line_tail_.pop_back();
  } else if (c >= 0x20 && c != 0x7f) {
    line_tail_ += static_cast<char>(c);
  }
}

bool TerminalTracker::prompt_asks_for_secret() const {
  std::string shown = cursor_line(true);
  if (looks_like_secret_prompt(shown)) return true;
  // The prompt as printed counts only where the screen cannot hold it: where the screen shows
  // its end, at the cursor, and not all of it, or where it is larger than half the screen (a
  // double-width line holds half as much). A prompt printed and then hidden or moved away from
  // on a screen that could show it asks for nothing.
  std::string_view tail = line_tail_, screen = shown;
  auto rtrim_view = [](std::string_view v) {
    size_t end = v.find_last_not_of(" \t");
    return end == std::string_view::npos ? std::string_view() : v.substr(0, end + 1);
  };
  tail = rtrim_view(tail);
  screen = rtrim_view(screen);
  size_t tail_chars = 0;
  for (char ch : tail) tail_chars += (static_cast<unsigned char>(ch) & 0xc0) != 0x80;
  bool cut_on_screen = !screen.empty() && tail.size() > screen.size() &&
                       tail.substr(tail.size() - screen.size()) == screen;
  bool larger_than_screen = 2 * tail_chars >= static_cast<size_t>(rows_) * cols_;
  return (cut_on_screen || larger_than_screen) && looks_like_secret_prompt(line_tail_);
}

std::vector<std::string> TerminalTracker::output(std::string_view bytes) {
  std::vector<std::string> done;
  follow_line_tail(bytes);
  // Feed up to each newline; a pending line is read off the screen just before the newline that
  // ends its echo moves the cursor away.
  while (!bytes.empty()) {
    size_t nl = pending_.empty() ? std::string_view::npos : bytes.find('\n');
    if (nl == std::string_view::npos) {
      terminal_->write(bytes);
      break;
    }
    terminal_->write(bytes.substr(0, nl));
    // The first waiting line whose echo this is; the ones before it were never echoed (typed
    // with echo off) and are kept out of the record.
    size_t match = pending_.size();
    std::optional<std::string> cmd;
    for (size_t i = 0; i < pending_.size(); ++i) {
      cmd = complete(pending_[i]);
      if (cmd) {
        match = i;
        break;
      }
    }
    if (match < pending_.size()) {
      for (size_t i = 0; i < match; ++i) release(pending_[i], !pending_[i].typed.empty());
      release(pending_[match], false);
      if (!cmd->empty() && !alt_screen_) done.push_back(std::move(*cmd));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(match) + 1);
      pending_newlines_ = 0;
    } else if (++pending_newlines_ > kMaxNewlinesPerPending) {
      release(pending_.front(), !pending_.front().typed.empty());  // never echoed
      pending_.pop_front();
      pending_newlines_ = 0;
    }
    terminal_->write("\n");
    bytes.remove_prefix(nl + 1);
  }
  // What is being typed is recordable as soon as the terminal shows it (unless it was typed
  // ahead of a password prompt the cursor now follows: its last keys may be on the prompt).
  if (!secret_ && !current_.held.empty() && pending_.empty() && !current_.typed.empty() &&
      echo_visible(current_.typed) && !prompt_asks_for_secret())
    release(current_, false);
  return done;
}

void TerminalTracker::input(std::string_view bytes) {
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    bool end = c == '\r' || c == '\n' || c == 0x03 || c == 0x04;
    if (!line_started_ && !end) {
      line_started_ = true;
      current_ = Line{cursor_line(true), "", ""};
      secret_ = prompt_asks_for_secret();
    }
    current_.held += c;
    if (end) {
      // Typed ahead of a password prompt: the line began before the prompt was printed. What
      // the terminal did not echo, ended at a prompt for a secret, is that secret.
      // (Echoed in full, it is on the screen and in the record already: a command.)
      if (!secret_ && line_started_ && !current_.typed.empty() &&
          cursor_line(false).find(EmulatedTerminal::shown(current_.typed)) == std::string::npos &&
          prompt_asks_for_secret())
        secret_ = true;
      if (secret_) {
        release(current_, true);
      } else if (c == 0x03 || c == 0x04 || alt_screen_) {
        release(current_, false);
      } else if (pending_.size() < kMaxPending) {
        if (!line_started_) current_ = Line{cursor_line(true), "", current_.held};
        pending_.push_back(std::move(current_));
        pending_newlines_ = 0;
      }
      current_ = Line{};
      secret_ = false;
      line_started_ = false;
      escape_ = 0;
      continue;
    }
    // Printable keystrokes, without the escape sequences of cursor keys.
    if (escape_ == 1) {
      escape_ = (c == '[' || c == 'O') ? 2 : 0;
    } else if (escape_ == 2) {
      if (u >= 0x40 && u <= 0x7e) escape_ = 0;
    } else if (c == 0x1b) {
      escape_ = 1;
    } else if (u >= 0x20 && u != 0x7f && current_.typed.size() < kMaxTyped) {
      current_.typed += c;
    }
    if (current_.held.size() > kMaxTyped) {
      if (!secret_) {
        release(current_, false);  // a long paste
      } else {
        // At a password prompt only the line's end matters (the rest is recorded as kMask):
        // keep the last keystroke, not everything a client sends without ever pressing Enter.
        current_.held.erase(0, current_.held.size() - 1);
      }
    }
  }
  // Control keys and cursor movement alone need no echo to be recorded.
  if (!secret_ && current_.typed.empty() && !current_.held.empty() && pending_.empty())
    release(current_, false);
}

std::string TerminalTracker::take_recordable_input() {
  std::string out;
  out.swap(recordable_);
  return out;
}

void TerminalTracker::finish() {
  for (auto& l : pending_) release(l, !l.typed.empty());
  pending_.clear();
  release(current_, !current_.typed.empty() && !echo_visible(current_.typed));
}

}  // namespace castgate::asciicast
