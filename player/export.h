// Writes one channel of a session as an asciicast v2 file (for asciinema and asciinema-player).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "player/log_reader.h"

namespace castgate::player {

struct ChannelInfo {
  int channel = 0;
  std::string kind, command, file_transfer;
  bool pty = false;
  uint64_t events = 0;
};

class SessionExporter {
 public:
  explicit SessionExporter(std::string session) : session_(std::move(session)) {}
  void add_file(const MappedFile& file);
  std::vector<ChannelInfo> channels() const;
  // Writes the asciicast (header, then events in sequence order). `channel` defaults to the
  // first channel with a header. Returns false if there is nothing to write.
  bool write(std::ostream& out, std::optional<int> channel, std::string& error) const;

 private:
  struct Piece {
    uint64_t seq;
    std::string json;  // the header object or the [t, code, data] array, as stored
  };
  struct Channel {
    ChannelInfo info;
    std::string header;
    std::vector<Piece> events;
  };
  void add_line(std::string_view line);
  std::string session_;
  std::map<int, Channel> channels_;
};

}  // namespace castgate::player
