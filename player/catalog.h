// Finds sessions in logs: who (identity), from where, to which target as which login, when,
// how it ended. Only the lines that start or end a session are parsed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "player/log_reader.h"

namespace castgate::player {

struct SessionSummary {
  std::string session;
  std::string start, end;  // RFC 3339
  std::string user_id, user_name, user_email, kind, auth_method;
  std::string source_ip;
  std::string target, login;
  std::string end_reason;
  int64_t duration_ns = -1;
  int channels = 0;
  bool denied = false;
  std::string denial;
  // Ended by a session.lost event: the worker process serving it died (as the log says; list does
  // not verify, `verify` does).
  bool lost = false;
  std::string lost_reason;  // its event.reason
  std::string lost_cause;   // "killed by signal 9", "exited with status 134", or empty
};

struct CatalogFilter {
  std::string user;          // matches id, name or email
  std::string target;        // exact target name
  std::string since, until;  // RFC 3339; sessions overlapping [since, until]
  bool include_denied = false;
};

class Catalog {
 public:
  void add_file(const MappedFile& file) { add_text(file.data()); }
  // Whole lines of a log: a file's content, or a piece of it (see InputChunks).
  void add_text(std::string_view text);
  std::vector<SessionSummary> sessions(const CatalogFilter& filter) const;
  // Lines that looked like session events but could not be read (cut short, not JSON).
  size_t unreadable() const { return unreadable_; }

 private:
  void add_line(std::string_view line);
  std::map<std::string, SessionSummary> by_id_;
  size_t unreadable_ = 0;
};

}  // namespace castgate::player
