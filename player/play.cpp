#include "player/play.h"

#include <poll.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "player/analyst_terminal.h"

namespace castgate::player {

bool parse_asciicast(std::string_view cast, TerminalRecording& out) {
  simdjson::dom::parser parser;
  bool header = false;
  while (!cast.empty()) {
    size_t nl = cast.find('\n');
    std::string_view line = cast.substr(0, nl);
    cast.remove_prefix(nl == std::string_view::npos ? cast.size() : nl + 1);
    if (line.empty()) continue;
    simdjson::dom::element root;
    if (parser.parse(line.data(), line.size()).get(root) != simdjson::SUCCESS) continue;
    if (!header) {
      if (!root.is_object()) return false;
      int64_t w = 0, h = 0;
      if (root["width"].get_int64().get(w) == simdjson::SUCCESS)
        out.cols = static_cast<int>(std::clamp<int64_t>(w, 2, ScreenView::kMaxCols));
      if (root["height"].get_int64().get(h) == simdjson::SUCCESS)
        out.rows = static_cast<int>(std::clamp<int64_t>(h, 2, ScreenView::kMaxRows));
      header = true;
      continue;
    }
    simdjson::dom::array a;
    if (root.get_array().get(a) != simdjson::SUCCESS || a.size() < 3) continue;
    double t = 0;
    std::string_view code, text;
    if (a.at(0).get_double().get(t) != simdjson::SUCCESS ||
        a.at(1).get_string().get(code) != simdjson::SUCCESS || code.size() != 1 ||
        a.at(2).get_string().get(text) != simdjson::SUCCESS || !std::isfinite(t))
      continue;
    out.events.push_back(TerminalEvent{std::max(0.0, t), code[0], std::string(text)});
  }
  return header;
}

void apply_event(ScreenView& view, char code, std::string_view text, StatusLine& status) {
  if (code == 'o')
    view.output(text);
  else if (code == 'r')
    view.resize(text);
  else if (code == 'm')
    status.note = "marker: " + std::string(text.substr(0, 200));
}

std::vector<std::string> terminal_sessions(const std::vector<const MappedFile*>& files) {
  std::vector<std::string> out;
  std::set<std::string, std::less<>> seen;
  simdjson::dom::parser parser;
  for (const MappedFile* file : files)
    for_each_line(*file, "asciicast.header", [&](std::string_view line, size_t) {
      StoredEvent e;
      simdjson::dom::element root;
      if (!unwrap_line(line, e) ||
          parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS)
        return;
      std::string_view session;
      bool pty = false;
      if (root.at_pointer("/castgate/session").get_string().get(session) != simdjson::SUCCESS ||
          root.at_pointer("/castgate/pty").get_bool().get(pty) != simdjson::SUCCESS || !pty ||
          seen.count(session))
        return;
      seen.emplace(session);
      out.emplace_back(session);
    });
  return out;
}

Playback::Playback(const std::vector<TerminalEvent>& events, double idle_limit) {
  times_.reserve(events.size());
  double last_recorded = 0, last = 0;
  for (const auto& e : events) {
    double gap = std::max(0.0, e.time - last_recorded);
    if (idle_limit > 0) gap = std::min(gap, idle_limit);
    last += gap;
    last_recorded = std::max(last_recorded, e.time);
    times_.push_back(last);
  }
}

double Playback::until_next() const {
  return done() ? 0 : std::max(0.0, times_[next_] - position_);
}

std::vector<size_t> Playback::take_due() {
  std::vector<size_t> due;
  while (next_ < times_.size() && times_[next_] <= position_) due.push_back(next_++);
  return due;
}

std::vector<size_t> Playback::step() {
  if (done()) return {};
  position_ = std::max(position_, times_[next_]);
  return {next_++};
}

std::vector<size_t> Playback::to_next_marker(const std::vector<TerminalEvent>& events) {
  size_t marker = next_;
  while (marker < events.size() && events[marker].code != 'm') ++marker;
  if (marker >= events.size()) return {};
  std::vector<size_t> out;
  for (; next_ <= marker; ++next_) out.push_back(next_);
  position_ = std::max(position_, times_[marker]);
  return out;
}

namespace {

std::string speed_text(double speed) {
  char buf[32];
  std::snprintf(buf, sizeof buf, speed >= 1 ? "%.0fx" : "%.3gx", speed);
  return buf;
}

}  // namespace

int play_recording(const TerminalRecording& rec, StatusLine status, const PlayOptions& o) {
  using Clock = std::chrono::steady_clock;
  SignalPipe signals;
  RawKeys keys(STDIN_FILENO);
  AnalystScreen screen(STDOUT_FILENO);
  ScreenView view(rec.cols, rec.rows);
  Playback playback(rec.events, o.idle_time_limit);
  FramePacer pacer;
  double speed = std::clamp(o.speed, 1.0 / 64, 64.0);
  bool paused = false, dirty = true;
  auto last = Clock::now();
  auto apply = [&](const std::vector<size_t>& due) {
    for (size_t i : due) apply_event(view, rec.events[i].code, rec.events[i].text, status);
    if (!due.empty()) dirty = true;
  };
  auto set_state = [&] {
    status.state =
        playback.done() ? "ended" : (paused ? "paused " : "playing ") + speed_text(speed);
  };
  // Playback time moves with the clock, times the speed, while not paused.
  auto tick = [&] {
    auto now = Clock::now();
    if (!paused) playback.advance(std::chrono::duration<double>(now - last).count() * speed);
    last = now;
    apply(playback.take_due());
    return now;
  };
  for (;;) {
    auto now = tick();
    set_state();
    if (playback.done()) break;
    if (dirty && pacer.due(now)) {
      if (!screen.draw(view, status)) return 1;
      pacer.drawn(now);
      dirty = false;
    }
    int timeout = -1;
    if (!paused) timeout = static_cast<int>(std::ceil(playback.until_next() / speed * 1000));
    if (dirty) timeout = timeout < 0 ? pacer.wait_ms(now) : std::min(timeout, pacer.wait_ms(now));
    timeout = std::min(timeout < 0 ? 1000 : timeout, 1000);
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {keys.active() ? keys.fd() : -1, POLLIN, 0}};
    if (poll(fds, 2, timeout) < 0) continue;  // EINTR: the signal is on the pipe
    if (fds[0].revents) {
      auto p = signals.drain();
      if (p.quit) return 130;
      if (p.resized) {
        screen.update_size();
        view.invalidate();
        dirty = true;
      }
    }
    if (fds[1].revents & (POLLHUP | POLLERR)) return 1;
    if (!(fds[1].revents & POLLIN)) continue;
    tick();  // the keys act on where the playback is now
    char buf[64];
    ssize_t n = ::read(keys.fd(), buf, sizeof buf);
    if (n <= 0) return 1;
    for (ssize_t i = 0; i < n; ++i) {
      switch (buf[i]) {
        case 'q':
        case 'Q':
          status.state = "quit";
          screen.draw(view, status);
          return 0;
        case ' ':
          paused = !paused;
          break;
        case '.':
          if (paused) apply(playback.step());
          break;
        case ']': {
          auto jumped = playback.to_next_marker(rec.events);
          if (jumped.empty()) status.note = "no marker after this point";
          apply(jumped);
          break;
        }
        case '+':
        case '=':
          speed = std::min(speed * 2, 64.0);
          break;
        case '-':
        case '_':
          speed = std::max(speed / 2, 1.0 / 64);
          break;
        default:
          break;
      }
      dirty = true;
    }
  }
  screen.draw(view, status);
  return 0;
}

}  // namespace castgate::player
