// The analyst's terminal, for play and follow: raw keys, its size, signals folded into the event
// loop, and a screen given back as it was found on every way out (return, exception, SIGINT,
// SIGTERM).
#pragma once

#include <string>
#include <string_view>

#include <termios.h>

#include "common/unique_fd.h"
#include "player/screen_view.h"

namespace castgate::player {

// Keys one at a time, without echo, while it lives; the terminal's settings are restored by
// the destructor. Does nothing if `fd` is not a terminal. Ctrl-C still raises SIGINT.
class RawKeys {
 public:
  explicit RawKeys(int fd);
  ~RawKeys();
  RawKeys(const RawKeys&) = delete;
  RawKeys& operator=(const RawKeys&) = delete;
  bool active() const { return active_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

using FileDescriptor = UniqueFd;  // an open file descriptor, closed once

// SIGINT, SIGTERM, SIGHUP and SIGWINCH as bytes on a pipe the event loop polls (the self-pipe
// trick); the previous handlers come back with the destructor. One at a time.
class SignalPipe {
 public:
  SignalPipe();
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;
  int fd() const { return read_.get(); }
  struct Pending {
    bool quit = false;
    bool resized = false;
  };
  // Reads what arrived (call when fd() is readable).
  Pending drain();

 private:
  FileDescriptor read_, write_;
};

// The size of the terminal on `fd`, or 80x24 if it is none.
TerminalSize terminal_size(int fd);

// Writes all of `bytes` to `fd` (blocking); false if the terminal is gone.
bool write_all(int fd, std::string_view bytes);

// The analyst's screen while a recording is drawn on it: cleared at the start; at the end the
// cursor is put below the last frame (which stays readable), shown again and attributes reset.
class AnalystScreen {
 public:
  explicit AnalystScreen(int fd);
  ~AnalystScreen();
  AnalystScreen(const AnalystScreen&) = delete;
  AnalystScreen& operator=(const AnalystScreen&) = delete;
  int fd() const { return fd_; }
  TerminalSize size() const { return size_; }
  void update_size() { size_ = terminal_size(fd_); }
  // Draws the frame; false if the terminal is gone.
  bool draw(ScreenView& view, const StatusLine& status);

 private:
  int fd_;
  TerminalSize size_;
};

}  // namespace castgate::player
