#include "player/follow.h"

#include <fcntl.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "player/analyst_terminal.h"
#include "player/log_reader.h"
#include "player/play.h"
#include "player/terminal_text.h"

namespace castgate::player {

void LineAssembler::feed(std::string_view bytes,
                         const std::function<void(std::string_view)>& on_line) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view part = bytes.substr(0, nl);
    if (skipping_) {  // the rest of a line already counted as too long
      if (nl == std::string_view::npos) return;
      skipping_ = false;
    } else if (partial_.size() + part.size() > kMaxLine) {
      ++skipped_;
      partial_.clear();
      skipping_ = nl == std::string_view::npos;
    } else if (nl == std::string_view::npos) {
      partial_.append(part);
    } else if (partial_.empty()) {
      on_line(part);
    } else {
      partial_.append(part);
      on_line(partial_);
      partial_.clear();
    }
    if (nl == std::string_view::npos) return;
    bytes.remove_prefix(nl + 1);
  }
}

void LineAssembler::finish(const std::function<void(std::string_view)>& on_line) {
  if (!skipping_ && !partial_.empty()) on_line(partial_);
  partial_.clear();
  skipping_ = false;
}

namespace {

using simdjson::dom::element;

std::string_view string_at(element root, const char* pointer) {
  std::string_view v;
  if (root.at_pointer(pointer).get_string().get(v) != simdjson::SUCCESS) return {};
  return v;
}

// The analyst's own filters, made safe all the same.
std::string waiting_state(const FollowFilter& f) {
  std::string note = "waiting for a terminal session";
  if (!f.user.empty()) note += " of " + f.user;
  if (!f.target.empty()) note += " on " + f.target;
  if (!f.session.empty()) note += " (session " + f.session + ")";
  return terminal_safe(note);
}

}  // namespace

SessionFollower::SessionFollower(FollowFilter filter, ScreenView& view)
    : filter_(std::move(filter)), view_(view) {
  status_.state = waiting_state(filter_);
}

bool SessionFollower::matches(std::string_view user_id, std::string_view user_name,
                              std::string_view email, std::string_view target,
                              std::string_view session) const {
  if (!filter_.user.empty() && filter_.user != user_id && filter_.user != user_name &&
      filter_.user != email)
    return false;
  if (!filter_.target.empty() && filter_.target != target) return false;
  return filter_.session.empty() || filter_.session == session;
}

void SessionFollower::line(std::string_view line) {
  bool live = following() && !ended_;
  // Cheap tests first: while a session is followed, only its lines matter; otherwise only the
  // start of a channel (a new session to follow). Nothing of other sessions is kept.
  if (live) {
    if (session_named_in(line) != status_.session) return;
  } else if (line.find("asciicast.header") == std::string_view::npos) {
    return;
  }
  StoredEvent e;
  thread_local simdjson::dom::parser parser;
  element root;
  if (!unwrap_line(line, e) ||
      parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS)
    return;
  std::string_view session = string_at(root, "/castgate/session");
  std::string_view action = string_at(root, "/event/action");
  std::string_view user_id = string_at(root, "/user/id");
  std::string_view user_name = string_at(root, "/user/name");
  std::string_view email = string_at(root, "/user/email");
  std::string_view source_ip = string_at(root, "/source/ip");
  std::string_view target = string_at(root, "/destination/address");
  std::string_view login = string_at(root, "/destination/user/name");
  if (login.empty()) login = string_at(root, "/user/target/name");  // records before 2026-12
  uint64_t seq = 0;
  int64_t channel = -1;
  if (session.empty() || root.at_pointer("/castgate/seq").get_uint64().get(seq)) return;
  if (root.at_pointer("/castgate/channel").get_int64().get(channel)) channel = -1;
  // The quick test above reads the first "session" member of the line, which may be another's
  // (an outer connection's jump.* events name the inner session first).
  if (live && session != status_.session) return;
  if (!live) {
    bool pty = false;
    if (action != "asciicast.header" || root.at_pointer("/castgate/pty").get_bool().get(pty) ||
        !pty || channel < 0 || !matches(user_id, user_name, email, target, session))
      return;
    int64_t width = 80, height = 24;
    element header;
    if (root.at_pointer("/asciicast/header").get(header) == simdjson::SUCCESS) {
      if (header["width"].get_int64().get(width)) width = 80;
      if (header["height"].get_int64().get(height)) height = 24;
    }
    view_.reset(static_cast<int>(std::clamp<int64_t>(width, 2, ScreenView::kMaxCols)),
                static_cast<int>(std::clamp<int64_t>(height, 2, ScreenView::kMaxRows)));
    status_ = StatusLine{};
    status_.session = std::string(session);
    status_.channel = static_cast<int>(channel);
    status_.state = "live";
    ended_ = false;
    any_seq_ = false;
    ++followed_count_;
  }
  // A line delivered twice (a log shipper retrying) or replayed from earlier is not applied
  // again.
  if (any_seq_ && seq <= last_seq_) return;
  any_seq_ = true;
  last_seq_ = seq;
  dirty_ = true;
  if (!user_id.empty()) status_.user_id = std::string(user_id);
  if (!user_name.empty()) status_.user_name = std::string(user_name);
  if (!source_ip.empty()) status_.source_ip = std::string(source_ip);
  if (!target.empty()) status_.target = std::string(target);
  if (!login.empty()) status_.login = std::string(login);
  if (action == "session.end" || action == "connection.closed" || action == "session.lost") {
    ended_ = true;
    status_.state = "ended";
    std::string_view reason = string_at(root, "/castgate/end_reason");
    status_.note = "session ended" +
                   (reason.empty() ? std::string() : " (" + std::string(reason) + ")") +
                   "; waiting for the next";
    return;
  }
  if (channel != status_.channel) return;
  element event;
  if (root.at_pointer("/asciicast/event").get(event) != simdjson::SUCCESS) return;
  simdjson::dom::array a;
  std::string_view code, text;
  if (event.get_array().get(a) || a.size() < 3 || a.at(1).get_string().get(code) ||
      code.size() != 1 || a.at(2).get_string().get(text))
    return;
  apply_event(view_, code[0], text, status_);
}

namespace {

// The stream follow reads: a pipe (polled) or a regular file (read to its end, then looked at
// again every 200 ms like `tail -F`, reopened if it was truncated or replaced).
class FollowInput {
 public:
  explicit FollowInput(const std::string& path) : path_(path) {
    if (path == "-") {
      if (isatty(STDIN_FILENO))
        throw std::runtime_error(
            "follow reads a stream of events: pipe one in (kubectl logs -f ... | castgate-player "
            "follow) or name a file");
      fd_ = STDIN_FILENO;
      return;
    }
    open_file();
  }
  int fd() const { return owned_.get() >= 0 ? owned_.get() : fd_; }
  bool tailed() const { return tailed_; }
  bool ended() const { return ended_; }
  // What is readable now (empty if nothing); sets ended() when a pipe is closed.
  std::string_view read_some() {
    ssize_t n = ::read(fd(), buf_.data(), buf_.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
    if (n < 0)
      throw std::runtime_error("cannot read " + terminal_safe(path_) + ": " + std::strerror(errno));
    if (n == 0) {
      if (tailed_)
        check_replaced();
      else
        ended_ = true;
      at_end_ = true;
      return {};
    }
    at_end_ = false;
    offset_ += static_cast<size_t>(n);
    return {buf_.data(), static_cast<size_t>(n)};
  }
  // A tailed file was read to its current end.
  bool at_end() const { return at_end_; }

 private:
  void open_file() {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      throw std::runtime_error("cannot open " + terminal_safe(path_) + ": " + std::strerror(errno));
    owned_ = FileDescriptor(fd);
    struct stat st {};
    fstat(fd, &st);
    tailed_ = S_ISREG(st.st_mode);
    inode_ = st.st_ino;
    offset_ = 0;
  }
  void check_replaced() {
    struct stat by_name {
    }, open_one{};
    if (::stat(path_.c_str(), &by_name) != 0 || fstat(owned_.get(), &open_one) != 0) return;
    if (by_name.st_ino != inode_)
      open_file();  // rotated: the new file from its start
    else if (static_cast<size_t>(open_one.st_size) < offset_) {
      lseek(owned_.get(), 0, SEEK_SET);  // truncated
      offset_ = 0;
    }
  }
  std::string path_;
  int fd_ = -1;
  FileDescriptor owned_;
  bool tailed_ = false, ended_ = false, at_end_ = false;
  ino_t inode_ = 0;
  size_t offset_ = 0;
  std::vector<char> buf_ = std::vector<char>(1 << 16);
};

}  // namespace

int follow_stream(const FollowOptions& o) {
  using Clock = std::chrono::steady_clock;
  FollowInput input(o.input);
  size_t skipped = 0;
  int rc = 0;
  {
    SignalPipe signals;
    // Keys come from the terminal itself: standard input is the stream.
    FileDescriptor tty(::open("/dev/tty", O_RDONLY | O_CLOEXEC));
    RawKeys keys(tty.get());
    AnalystScreen screen(STDOUT_FILENO);
    ScreenView view(80, 24);
    SessionFollower follower(o.filter, view);
    LineAssembler lines;
    FramePacer pacer;
    bool dirty = true;
    auto on_line = [&](std::string_view l) { follower.line(l); };
    auto done = [&] { return follower.ended() && (o.once || !o.filter.session.empty()); };
    for (;;) {
      auto now = Clock::now();
      dirty = follower.take_dirty() || dirty;
      bool finished = done() || input.ended();
      if (input.ended()) follower.status().note += " | input ended";
      if (lines.skipped() != skipped) {
        skipped = lines.skipped();
        dirty = true;
      }
      if ((dirty && pacer.due(now)) || finished) {
        StatusLine status = follower.status();
        if (skipped)
          status.state += ", " + std::to_string(skipped) + " lines over " +
                          std::to_string(LineAssembler::kMaxLine >> 20) + " MiB skipped";
        if (!screen.draw(view, status)) return 1;
        pacer.drawn(now);
        dirty = false;
      }
      if (finished) break;
      int timeout = dirty ? pacer.wait_ms(now) : -1;
      if (input.tailed())
        timeout = input.at_end() ? (timeout < 0 ? 200 : std::min(timeout, 200)) : 0;
      pollfd fds[3] = {{signals.fd(), POLLIN, 0},
                       {keys.active() ? keys.fd() : -1, POLLIN, 0},
                       {input.tailed() ? -1 : input.fd(), POLLIN, 0}};
      if (poll(fds, 3, timeout) < 0) continue;
      if (fds[0].revents) {
        auto p = signals.drain();
        if (p.quit) {
          rc = 130;
          break;
        }
        if (p.resized) {
          screen.update_size();
          view.invalidate();
          dirty = true;
        }
      }
      if (fds[1].revents & POLLIN) {
        char buf[64];
        ssize_t n = ::read(keys.fd(), buf, sizeof buf);
        if (n > 0 && std::memchr(buf, 'q', static_cast<size_t>(n))) break;
      }
      if (input.tailed() || fds[2].revents) {
        lines.feed(input.read_some(), on_line);
        if (input.ended()) lines.finish(on_line);
      }
    }
  }
  if (skipped)
    std::cerr << "castgate-player: " << skipped << " lines longer than " << LineAssembler::kMaxLine
              << " bytes were skipped\n";
  return rc;
}

}  // namespace castgate::player
