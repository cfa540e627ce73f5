#include "asciicast/terminal_tracker.h"

#include <regex.h>
#include <vterm.h>

#include <algorithm>
#include <mutex>

#include "common/text.h"

namespace castgate::asciicast {
namespace {

constexpr size_t kMaxPending = 16;
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
  bool matches(const std::string& text) const {
    // When the pattern cannot be compiled, treat every prompt as secret: fail closed.
    return !ok_ || regexec(&re_, text.c_str(), 0, nullptr, 0) == 0;
  }

 private:
  regex_t re_{};
  bool ok_ = false;
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

bool TerminalTracker::looks_like_secret_prompt(std::string_view text) {
  static const SecretPromptPattern pattern;
  // Only the end of the line matters; keep the regex input short.
  if (text.size() > 256) text = text.substr(text.size() - 256);
  return pattern.matches(std::string(text));
}

int TerminalTracker::on_settermprop(int prop, void* value, void* self) {
  auto* t = static_cast<TerminalTracker*>(self);
  if (prop == VTERM_PROP_ALTSCREEN) t->alt_screen_ = static_cast<VTermValue*>(value)->boolean != 0;
  return 1;
}

TerminalTracker::TerminalTracker(int cols, int rows)
    : cols_(std::clamp(cols, 2, 1000)), rows_(std::clamp(rows, 2, 1000)) {
  vt_ = vterm_new(rows_, cols_);
  vterm_set_utf8(vt_, 1);
  screen_ = vterm_obtain_screen(vt_);
  static const VTermScreenCallbacks callbacks = [] {
    VTermScreenCallbacks c{};
    c.settermprop = [](VTermProp prop, VTermValue* val, void* user) {
      return on_settermprop(prop, val, user);
    };
    return c;
  }();
  vterm_screen_set_callbacks(screen_, &callbacks, this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
}

TerminalTracker::~TerminalTracker() {
  vterm_free(vt_);
}

void TerminalTracker::resize(int cols, int rows) {
  cols_ = std::clamp(cols, 2, 1000);
  rows_ = std::clamp(rows, 2, 1000);
  vterm_set_size(vt_, rows_, cols_);
}

// The logical line holding the cursor: rows filled to the last column continue on the next row
// (libvterm 0.1 does not say which rows were wrapped, a full row is the best sign).
std::string TerminalTracker::cursor_line(bool up_to_cursor) const {
  VTermState* state = vterm_obtain_state(vt_);
  VTermPos cursor;
  vterm_state_get_cursorpos(state, &cursor);
  auto row_full = [&](int row) {
    VTermScreenCell cell;
    VTermPos p{row, cols_ - 1};
    return vterm_screen_get_cell(screen_, p, &cell) && cell.chars[0] != 0 && cell.chars[0] != ' ';
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
      if (!vterm_screen_get_cell(screen_, p, &cell)) break;
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

std::string TerminalTracker::complete(const Pending& p) const {
  std::string line = cursor_line(false);
  std::string command;
  if (!p.prompt.empty() && starts_with(line, p.prompt)) {
    command = line.substr(p.prompt.size());
  } else if (p.prompt.empty()) {
    command = line;
  } else {
    command = p.typed;  // the screen no longer shows the prompt: fall back to the keystrokes
  }
  return std::string(trim(command));
}

std::vector<std::string> TerminalTracker::output(std::string_view bytes) {
  std::vector<std::string> done;
  // Feed up to each newline; a pending command is read off the screen just before the newline
  // that ends its echo moves the cursor away.
  while (!bytes.empty()) {
    size_t nl = pending_.empty() ? std::string_view::npos : bytes.find('\n');
    if (nl == std::string_view::npos) {
      vterm_input_write(vt_, bytes.data(), bytes.size());
      break;
    }
    vterm_input_write(vt_, bytes.data(), nl);
    if (!alt_screen_) {
      std::string cmd = complete(pending_.front());
      if (!cmd.empty()) done.push_back(std::move(cmd));
    }
    pending_.pop_front();
    vterm_input_write(vt_, "\n", 1);
    bytes.remove_prefix(nl + 1);
  }
  if (alt_screen_) pending_.clear();
  return done;
}

std::string TerminalTracker::input(std::string_view bytes) {
  std::string recorded;
  for (char c : bytes) {
    bool enter = c == '\r' || c == '\n';
    if (!line_started_ && !enter) {
      line_started_ = true;
      prompt_ = cursor_line(true);
      typed_.clear();
      secret_ = looks_like_secret_prompt(prompt_);
    }
    if (secret_) {
      if (enter) {
        recorded += kMask;
        recorded += c;
        secret_ = false;
        line_started_ = false;
      } else if (c == 0x03 || c == 0x04) {  // Ctrl-C / Ctrl-D abandon the prompt
        recorded += kMask;
        recorded += c;
        secret_ = false;
        line_started_ = false;
      }
      continue;  // everything else typed at the prompt stays out of the record
    }
    recorded += c;
    if (enter) {
      if (!alt_screen_ && pending_.size() < kMaxPending)
        pending_.push_back(Pending{line_started_ ? prompt_ : cursor_line(true), typed_});
      line_started_ = false;
      typed_.clear();
    } else if (c == 0x03) {
      line_started_ = false;
      typed_.clear();
    } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && typed_.size() < kMaxTyped) {
      typed_ += c;
    }
  }
  return recorded;
}

}  // namespace castgate::asciicast
