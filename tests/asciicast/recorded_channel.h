// One exec channel without a pty recorded into memory, for tests of what ChannelRecording writes:
// events() parses the lines, recorded() joins an asciicast stream's text.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/alert_rules.h"
#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "tests/asciicast/memory_sink.h"

namespace castgate::asciicast::testing {

struct RecordedChannel {
  MemorySink sink;
  ManualClock clock;
  SessionLogOptions opts;
  std::unique_ptr<SessionLog> log;
  std::unique_ptr<ChannelRecording> rec;

  // `alerts` may be null (no alert rules).
  RecordedChannel(bool summarize, std::string command, const AlertRules* alerts = nullptr) {
    opts.instance = "gw-test";
    opts.max_line = 4096;
    log = std::make_unique<SessionLog>(opts, "sess1", Endpoint{"192.0.2.7", 50000}, sink,
                                       std::make_shared<Backlog>(1 << 26), clock);
    Identity id;
    id.subject = "alice";
    id.issuer = "castgate:identities";
    id.auth_method = "publickey";
    log->set_identity(id);
    log->set_target("db1.int", Endpoint{"10.0.0.5", 22}, "ubuntu");
    rec = std::make_unique<ChannelRecording>(*log, 0, clock, alerts);
    ChannelHeader h;
    h.kind = ChannelKind::kExec;
    h.command = std::move(command);
    h.summarize_binary = summarize;
    rec->start(h);
  }

  std::vector<nlohmann::json> events(std::string_view action) const {
    std::vector<nlohmann::json> out;
    for (const auto& line : sink.lines) {
      auto j = nlohmann::json::parse(line);
      if (j["event"]["action"] == action) out.push_back(std::move(j));
    }
    return out;
  }

  std::string recorded(std::string_view action) const {
    std::string text;
    for (const auto& e : events(action)) text += e["asciicast"]["event"][2].get<std::string>();
    return text;
  }

  // "ACTION PATH" of every event with a file.path, one per line.
  std::string paths() const {
    std::string s;
    for (const auto& line : sink.lines) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("file") && j["file"].contains("path"))
        s += j["event"]["action"].get<std::string>() + " " + j["file"]["path"].get<std::string>() +
             "\n";
    }
    return s;
  }

  size_t bytes() const {
    size_t n = 0;
    for (const auto& l : sink.lines) n += l.size() + 1;
    return n;
  }
};

}  // namespace castgate::asciicast::testing
