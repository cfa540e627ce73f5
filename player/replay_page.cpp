#include "player/replay_page.h"

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "player/web_assets.h"

namespace castgate::player {

std::string script_safe_json(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + payload.size() / 64);
  for (char c : payload) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

namespace {

// Writes `page` with each marker replaced by its content. Only the template is searched, never
// the inserted content; each marker must occur exactly once.
ExportResult fill(std::ostream& out, std::string_view page,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> parts) {
  std::vector<std::pair<size_t, std::pair<std::string_view, std::string_view>>> at;
  for (const auto& part : parts) {
    size_t pos = page.find(part.first);
    if (pos == std::string_view::npos || page.find(part.first, pos + 1) != std::string_view::npos) {
      return fail(ExportError::kDamagedTemplate,
                  "the replay page template is damaged (marker " + std::string(part.first) + ")");
    }
    at.emplace_back(pos, part);
  }
  std::sort(at.begin(), at.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t done = 0;
  for (const auto& [pos, part] : at) {
    out << page.substr(done, pos - done) << part.second;
    done = pos + part.first.size();
  }
  out << page.substr(done);
  return {};
}

}  // namespace

ExportResult write_replay_page(std::ostream& out, const SessionExporter& exporter,
                               const std::string& session,
                               const std::optional<SessionVerdict>& verdict) {
  auto events = exporter.other_events();
  auto channels = exporter.channels();
  if (events.empty() && channels.empty() && !verdict) {
    return fail(ExportError::kNoEvents, "no events of session " + session + " in the input");
  }
  nlohmann::json meta = {{"session", session}, {"channels", nlohmann::json::array()}};
  for (const auto& c : channels) {
    std::ostringstream cast;
    // Every listed channel has a header, so there is always something to write.
    (void)exporter.write(cast, c.channel);
    meta["channels"].push_back({{"channel", c.channel},
                                {"kind", c.kind},
                                {"command", c.command},
                                {"pty", c.pty},
                                {"file_transfer", c.file_transfer},
                                {"cast", cast.str()}});
  }
  nlohmann::json v = {{"checked", verdict.has_value()}};
  if (verdict) {
    v["ok"] = verdict->ok;
    v["signed"] = verdict->signed_ok;
    v["events"] = verdict->events;
    v["problems"] = verdict->problems;
    v["lost"] = verdict->lost;
    if (verdict->lost) v["lost_reason"] = verdict->lost_reason;
    v["shown_events"] = verdict->verified.size();
  }
  meta["verification"] = v;
  // The events are spliced in as stored (each is a JSON object that parsed).
  // Problems name the input files, whose paths need not be UTF-8.
  std::string payload = meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  payload.pop_back();  // the closing brace
  payload += ",\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) payload += ',';
    payload += events[i];
  }
  payload += "]}";
  std::string data = script_safe_json(payload);
  return fill(out, replay_page_template(),
              {{"/*@PLAYER_CSS@*/", asciinema_player_css()},
               {"/*@PLAYER_JS@*/", asciinema_player_js()},
               {"@DATA@", data}});
}

}  // namespace castgate::player
