#include "player/analyst_terminal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace castgate::player {

RawKeys::RawKeys(int fd) : fd_(fd) {
  if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
  raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  active_ = tcsetattr(fd, TCSAFLUSH, &raw) == 0;
}

RawKeys::~RawKeys() {
  if (active_) tcsetattr(fd_, TCSAFLUSH, &saved_);
}

namespace {

int g_signal_write_fd = -1;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
struct sigaction g_saved[std::size(kSignals)];

extern "C" void on_signal(int sig) {
  int saved_errno = errno;
  char c = sig == SIGWINCH ? 'w' : 'q';
  if (g_signal_write_fd >= 0) (void)!::write(g_signal_write_fd, &c, 1);
  errno = saved_errno;
}

}  // namespace

SignalPipe::SignalPipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  read_ = FileDescriptor(fds[0]);
  write_ = FileDescriptor(fds[1]);
  g_signal_write_fd = write_.get();
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(kSignals[i], &sa, &g_saved[i]);
  }
}

SignalPipe::~SignalPipe() {
  for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &g_saved[i], nullptr);
  g_signal_write_fd = -1;
}

SignalPipe::Pending SignalPipe::drain() {
  Pending p;
  char buf[64];
  ssize_t n;
  while ((n = ::read(read_.get(), buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; ++i) (buf[i] == 'w' ? p.resized : p.quit) = true;
  return p;
}

TerminalSize terminal_size(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
    return {ws.ws_col, ws.ws_row};
  return {80, 24};
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

AnalystScreen::AnalystScreen(int fd) : fd_(fd), size_(terminal_size(fd)) {
  write_all(fd_, seq::kClearScreen);
}

AnalystScreen::~AnalystScreen() {
  std::string end = std::string(seq::kNormal) + seq::cursor_to(size_.rows, 1) + "\r\n";
  end += seq::kShowCursor;
  end += seq::kWrap;
  write_all(fd_, end);
}

bool AnalystScreen::draw(ScreenView& view, const StatusLine& status) {
  return write_all(fd_, view.frame(size_, status_text(status)));
}

}  // namespace castgate::player
