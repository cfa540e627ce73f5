// Writes one channel of a session as an asciicast v2 file (for asciinema and asciinema-player).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"
#include "player/log_reader.h"
#include "player/verify.h"

namespace castgate::player {

// Why an export or a replay page was not written; the Error's detail is what the user is told.
enum class ExportError {
  kNoRecording,      // no (verified) recording of the channel or the session
  kNoEvents,         // nothing of the session in the input
  kDamagedTemplate,  // the replay page's template lost a marker
};
std::string_view to_string(ExportError e);
using ExportResult = Result<void, Error<ExportError>>;

struct ChannelInfo {
  int channel = 0;
  std::string kind, command, file_transfer;
  bool pty = false;
  uint64_t events = 0;
};

// An output event [t,"o","text"] (minified JSON) with every LF that does not follow a CR written
// as CRLF; `last_cr` carries whether the previous event's text ended with CR. Other events are
// returned unchanged.
std::string crlf_output_event(std::string_view event, bool& last_cr);

class SessionExporter {
 public:
  struct Piece {
    uint64_t seq;
    std::string json;  // the header object, the [t, code, data] array, or a whole event
  };
  // With `keep_other_events`, the session's events that are not asciicast (commands, alerts,
  // file operations, session start and end...) are kept too, for other_events(). With
  // `verified_only` (borrowed; it must outlive the exporter), an event is kept only if it is a
  // member of that chain: any other line, even one with a member's seq, is never shown.
  explicit SessionExporter(std::string session, bool keep_other_events = false,
                           const VerifiedChain* verified_only = nullptr)
      : session_(std::move(session)),
        keep_others_(keep_other_events),
        verified_only_(verified_only) {}
  void add_file(const MappedFile& file);
  std::vector<ChannelInfo> channels() const;
  // The kept non-asciicast events (canonical JSON), in sequence order, without duplicates;
  // views into this exporter.
  std::vector<std::string_view> other_events() const;
  // Writes the asciicast (header, then events in sequence order). `channel` defaults to the
  // first channel with a header. Fails if there is nothing to write.
  ExportResult write(std::ostream& out, std::optional<int> channel) const;

 private:
  struct Channel {
    ChannelInfo info;
    std::string header;
    std::vector<Piece> events;
  };
  void add_line(std::string_view line);
  std::string session_;
  bool keep_others_;
  const VerifiedChain* verified_only_;
  std::map<int, Channel> channels_;
  std::vector<Piece> others_;
};

}  // namespace castgate::player
