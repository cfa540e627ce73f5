// castgate-player play: one terminal channel replayed on the analyst's terminal, like
// `asciinema play`, straight from the logs (the events SessionExporter collects), drawn through
// ScreenView so that no recorded byte reaches the terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "player/log_reader.h"
#include "player/screen_view.h"

namespace castgate::player {

struct TerminalEvent {
  double time = 0;  // seconds since the channel started
  char code = 'o';  // 'o', 'r', 'm' ('i' is kept but not shown)
  std::string text;
};

struct TerminalRecording {
  int cols = 80, rows = 24;
  std::vector<TerminalEvent> events;
};

// An asciicast v2 text (a header line, then [t, code, text] lines), as SessionExporter::write
// makes it. False if the header is missing or not an object.
bool parse_asciicast(std::string_view cast, TerminalRecording& out);

// What an event does to the view: output, resize, or a marker named in the status line.
void apply_event(ScreenView& view, char code, std::string_view text, StatusLine& status);

// The sessions in `files` that have a terminal (pty) channel, in the order first seen.
std::vector<std::string> terminal_sessions(const std::vector<const MappedFile*>& files);

// Where a replay is: events are due once the playback position (seconds, with every pause
// between events cut to the idle limit) reaches their time. Pure logic; the loop drives it.
class Playback {
 public:
  // `idle_limit` <= 0: no limit.
  Playback(const std::vector<TerminalEvent>& events, double idle_limit);
  double position() const { return position_; }
  bool done() const { return next_ >= times_.size(); }
  size_t next() const { return next_; }
  // Seconds of playback until the next event is due (0 if it is; undefined when done()).
  double until_next() const;
  void advance(double seconds) { position_ += seconds; }
  // The events due now, in order; they are consumed.
  std::vector<size_t> take_due();
  // The next event alone, now (a step while paused).
  std::vector<size_t> step();
  // Every event up to and including the next marker ("m"), now; nothing if there is none.
  std::vector<size_t> to_next_marker(const std::vector<TerminalEvent>& events);

 private:
  std::vector<double> times_;  // with the idle limit applied
  size_t next_ = 0;
  double position_ = 0;
};

struct PlayOptions {
  double speed = 1;
  double idle_time_limit = 0;
};

// Plays `recording` on standard output; keys from standard input when it is a terminal.
// Returns 0 when played to the end or quit.
int play_recording(const TerminalRecording& recording, StatusLine status, const PlayOptions& o);

}  // namespace castgate::player
