#include "player/export.h"

#include <simdjson.h>

#include <algorithm>

#include "asciicast/chain.h"

namespace castgate::player {

void SessionExporter::add_file(const MappedFile& file) {
  for_each_line(file, session_, [&](std::string_view line, size_t) { add_line(line); });
}

void SessionExporter::add_line(std::string_view line) {
  StoredEvent e;
  if (!unwrap_line(line, e)) return;
  // The asciicast member only exists on asciicast.* events; skip the rest before parsing.
  bool asciicast = e.canonical.find("\"asciicast\":{") != std::string_view::npos;
  if (!asciicast && !keep_others_) return;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS) return;
  std::string_view session;
  if (root.at_pointer("/castgate/session").get_string().get(session) != simdjson::SUCCESS ||
      session != session_)
    return;
  uint64_t seq = 0;
  if (root.at_pointer("/castgate/seq").get_uint64().get(seq) != simdjson::SUCCESS) return;
  // Hashed only here, once the line is known to be one of the session's events.
  if (verified_only_ && !verified_only_->contains(seq, asciicast::chain_hash(e.canonical))) return;
  if (!asciicast) {
    others_.push_back(Piece{seq, std::string(e.canonical)});
    return;
  }
  int64_t channel = -1;
  if (root.at_pointer("/castgate/channel").get_int64().get(channel) != simdjson::SUCCESS ||
      channel < 0)
    return;
  std::string header, event;
  simdjson::dom::element value;
  if (root.at_pointer("/asciicast/header").get(value) == simdjson::SUCCESS) {
    header = simdjson::minify(value);
  } else if (root.at_pointer("/asciicast/event").get(value) == simdjson::SUCCESS) {
    event = simdjson::minify(value);
  } else {
    return;
  }
  std::string_view kind, file_transfer, command;
  bool pty = false;
  if (!header.empty()) {
    if (root.at_pointer("/castgate/channel_kind").get_string().get(kind)) kind = {};
    if (value.at_key("command").get_string().get(command)) command = {};
    if (root.at_pointer("/castgate/file_transfer").get_string().get(file_transfer))
      file_transfer = {};
    if (root.at_pointer("/castgate/pty").get_bool().get(pty)) pty = false;
  }
  auto& ch = channels_[static_cast<int>(channel)];
  ch.info.channel = static_cast<int>(channel);
  if (!header.empty()) {
    ch.header = std::move(header);
    ch.info.kind = std::string(kind);
    ch.info.command = std::string(command);
    ch.info.file_transfer = std::string(file_transfer);
    ch.info.pty = pty;
  } else {
    ch.events.push_back(Piece{seq, std::move(event)});
    ++ch.info.events;
  }
}

std::vector<ChannelInfo> SessionExporter::channels() const {
  std::vector<ChannelInfo> out;
  for (const auto& [id, ch] : channels_)
    if (!ch.header.empty()) out.push_back(ch.info);
  return out;
}

namespace {

// Pieces in sequence order, each sequence number once (a log shipper may deliver a line twice).
std::vector<const std::string*> in_sequence(const std::vector<SessionExporter::Piece>& pieces) {
  std::vector<const SessionExporter::Piece*> sorted;
  sorted.reserve(pieces.size());
  for (const auto& p : pieces) sorted.push_back(&p);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->seq < b->seq; });
  std::vector<const std::string*> out;
  out.reserve(sorted.size());
  uint64_t last = UINT64_MAX;
  for (const auto* p : sorted) {
    if (p->seq == last) continue;
    last = p->seq;
    out.push_back(&p->json);
  }
  return out;
}

}  // namespace

std::string crlf_output_event(std::string_view event, bool& last_cr) {
  // [t,"o","text"] as simdjson minifies it: the text starts after the code.
  constexpr std::string_view kOutput = ",\"o\",\"";
  size_t start = event.find(kOutput);
  if (event.empty() || event.front() != '[' || start == std::string_view::npos ||
      event.find('"') < start)
    return std::string(event);
  start += kOutput.size();
  std::string out(event.substr(0, start));
  out.reserve(event.size() + event.size() / 8);
  size_t i = start;
  for (; i < event.size() && event[i] != '"'; ++i) {
    char c = event[i];
    if (c != '\\' || i + 1 >= event.size()) {
      out += c;
      // A UTF-8 continuation byte does not change what the last character was.
      if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) last_cr = false;
      continue;
    }
    char e = event[++i];
    if (e == 'n') {
      out += last_cr ? "\\n" : "\\r\\n";
      last_cr = false;
    } else if (e == 'u' && i + 4 < event.size() && event.substr(i + 1, 4) == "000a") {
      out += last_cr ? "\\n" : "\\r\\n";
      i += 4;
      last_cr = false;
    } else {
      out += '\\';
      out += e;
      last_cr = e == 'r' || (e == 'u' && i + 4 < event.size() && event.substr(i + 1, 4) == "000d");
    }
  }
  out.append(event.substr(i));
  return out;
}

std::vector<std::string_view> SessionExporter::other_events() const {
  std::vector<std::string_view> out;
  for (const std::string* json : in_sequence(others_)) out.push_back(*json);
  return out;
}

std::string_view to_string(ExportError e) {
  switch (e) {
    case ExportError::kNoRecording:
      return "no recording";
    case ExportError::kNoEvents:
      return "no events";
    case ExportError::kDamagedTemplate:
      return "damaged template";
  }
  return "unknown";
}

ExportResult SessionExporter::write(std::ostream& out, std::optional<int> channel) const {
  const Channel* ch = nullptr;
  for (const auto& [id, c] : channels_) {
    if (c.header.empty()) continue;
    if (!channel || *channel == id) {
      ch = &c;
      break;
    }
  }
  if (!ch) {
    std::string what = verified_only_ ? "verified recording" : "recording";
    return fail(ExportError::kNoRecording,
                channel ? "session " + session_ + " has no " + what + " of channel " +
                              std::to_string(*channel)
                        : "no " + what + " of session " + session_ + " in the input");
  }
  if (ch->info.pty || ch->header.empty() || ch->header.back() != '}') {
    out << ch->header << '\n';
    for (const std::string* json : in_sequence(ch->events)) out << *json << '\n';
    return {};
  }
  // No pty on the target, so no `onlcr` there: the output has bare LF, which the user's own
  // terminal (in raw mode under ssh, with its own onlcr) showed as new lines. A player shows
  // what the user saw only if LF becomes CRLF; the header says that it did.
  out << std::string_view(ch->header).substr(0, ch->header.size() - 1)
      << ",\"x_castgate_newlines\":\"no pty: LF shown as CRLF, as on the user's terminal\"}\n";
  bool last_cr = false;
  for (const std::string* json : in_sequence(ch->events))
    out << crlf_output_event(*json, last_cr) << '\n';
  return {};
}

}  // namespace castgate::player
