// A self-contained HTML page that replays one session: asciinema-player with every recorded
// channel, who/where/when, a timeline of commands, alerts and file operations (click to play from
// there), and the integrity verdict. Nothing is fetched; recorded text is never interpreted as
// HTML.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "player/export.h"
#include "player/verify.h"

namespace castgate::player {

// `exporter` must have been made with keep_other_events, and with the verdict's chain as its
// filter when there is a verdict. `verdict` is absent when no recording key was given. Fails
// when there is no verdict and the input holds nothing of the session; with a verdict, the page
// is written even if no event of the session verified.
ExportResult write_replay_page(std::ostream& out, const SessionExporter& exporter,
                               const std::string& session,
                               const std::optional<SessionVerdict>& verdict);

// `payload` made safe to sit inside <script type="application/json">: every '<' (which JSON
// only allows inside strings) becomes \u003c, so no "</script>" or "<!--" can end or bend it.
std::string script_safe_json(std::string_view payload);

}  // namespace castgate::player
