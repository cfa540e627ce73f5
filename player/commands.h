// `castgate-player commands`: the auditor's question in one table — every command run through
// castgate, with who ran it, from where, on which target as which login, in which session, its
// exit status where the record has one, and the alert rules it matched.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "player/catalog.h"
#include "player/log_reader.h"

namespace castgate::player {

struct CommandRow {
  std::string time;  // RFC 3339
  std::string session;
  int channel = -1;
  uint64_t seq = 0;
  std::string command;  // process.command_line
  std::string via;      // "exec" (the SSH exec request) or "terminal" (a line typed in a shell)
  std::optional<int64_t> exit_code;  // an exec's channel exit status
  std::vector<std::string> alerts;   // rule names
  SessionSummary who;                // the session's identity, source, target, login
};

struct CommandFilter {
  std::string user, target;  // as for list
  std::string since, until;  // RFC 3339: the command's own time
  std::string grep;          // a substring of the command line
};

class CommandIndex {
 public:
  // Reads command, alert and channel.end events, and the session events `list` reads.
  void add_file(const MappedFile& file) { add_text(file.data()); }
  // Whole lines of a log: a file's content, or a piece of it (see InputChunks).
  void add_text(std::string_view text);
  // Rows matching `filter`, in time order.
  std::vector<CommandRow> rows(const CommandFilter& filter) const;
  // Lines that looked like command, alert or channel-end events (or session events) but could
  // not be read (cut short, not JSON): reported, never skipped silently.
  size_t unreadable() const { return unreadable_ + catalog_.unreadable(); }

 private:
  void add_line(std::string_view line);
  struct Alert {
    std::string session;
    int channel;
    uint64_t seq;
    std::string rule;
  };
  Catalog catalog_;
  std::vector<CommandRow> commands_;
  std::vector<Alert> alerts_;
  std::map<std::pair<std::string, int>, int64_t> exit_codes_;  // (session, channel)
  size_t unreadable_ = 0;
};

}  // namespace castgate::player
