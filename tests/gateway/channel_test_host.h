// What a Session gives its channels (ChannelHost), for unit tests of the channels: a log in
// memory, a clock the test moves, switches a test turns (whether the recording has room, whether
// it is refused) and what the channels reported back.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "asciicast/session_log.h"
#include "common/clock.h"
#include "gateway/channel_pair.h"
#include "gateway/config.h"
#include "gateway/policy.h"
#include "gateway/targets.h"
#include "tests/asciicast/memory_sink.h"

namespace castgate::testing {

class ChannelTestHost final : public ChannelHost {
 public:
  ChannelTestHost() {
    opts_.instance = "gw-test";
    log_ = std::make_unique<asciicast::SessionLog>(
        opts_, "sess1", asciicast::Endpoint{"192.0.2.7", 50000}, sink,
        std::make_shared<asciicast::Backlog>(1 << 26), clock_);
    decision_.allowed = true;
    decision_.pty = true;
    target_.name = "db1.int";
    target_.host = "10.0.0.5";
    clock_.advance(std::chrono::seconds(1));  // a zero steady time reads as "not opened"
  }

  asciicast::testing::MemorySink sink;
  GatewayConfig gateway_config;
  ssh_session upstream = nullptr;
  bool room = true;
  std::string refusal;
  int steps_requested = 0;
  std::vector<std::string> limits;
  int channels_finished = 0;
  std::optional<int> finished_exit_status;
  uint64_t bytes_to_user = 0, bytes_to_target = 0;  // the finished channels' totals

  ManualClock& manual_clock() { return clock_; }

  // The recorded events, as parsed JSON lines.
  std::vector<nlohmann::json> events() const {
    std::vector<nlohmann::json> out;
    for (const auto& line : sink.lines) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  // The recorded events of one action.
  std::vector<nlohmann::json> events(const std::string& action) const {
    std::vector<nlohmann::json> out;
    for (auto& e : events())
      if (e["event"]["action"] == action) out.push_back(e);
    return out;
  }
  // The actions of the events, in order: "a b c".
  std::string actions() const {
    std::string out;
    for (const auto& e : events())
      out += (out.empty() ? "" : " ") + e["event"]["action"].get<std::string>();
    return out;
  }
  // The asciicast text of the channel's data events in recorded order: "ACTION:TEXT|...".
  std::string data_events() const {
    std::string out;
    for (const auto& e : events()) {
      auto action = e["event"]["action"].get<std::string>();
      if (action == "asciicast.output" || action == "asciicast.input" ||
          action == "asciicast.stderr")
        out += action + ":" + e["asciicast"]["event"][2].get<std::string>() + "|";
    }
    return out;
  }
  // The one channel.end event (fails the test if there is not exactly one).
  nlohmann::json end_event() const {
    auto ends = events("channel.end");
    REQUIRE(ends.size() == 1);
    return ends.front();
  }

  ssh_session upstream_session() override { return upstream; }
  asciicast::SessionLog& log() override { return *log_; }
  bool recording_has_room() override { return room; }
  bool recording_enabled() const override { return true; }
  const asciicast::AlertRules* alert_rules() const override { return nullptr; }
  std::string recording_refusal() override { return refusal; }
  const Clock& clock() const override { return clock_; }
  const Target* target() const override { return &target_; }
  const PolicyDecision& decision() const override { return decision_; }
  std::string title() const override { return "alice on db1.int as ubuntu"; }
  void note_activity() override {}
  void request_step() override { ++steps_requested; }
  void limit_exceeded(const std::string& limit, const std::string&) override {
    limits.push_back(limit);
  }
  bool resize_terminal(int, long) override { return true; }
  const GatewayConfig& config() const override { return gateway_config; }
  void channel_finished(uint64_t to_user, uint64_t to_target, std::optional<int> exit_status,
                        const std::optional<std::string>&) override {
    ++channels_finished;
    finished_exit_status = exit_status;
    bytes_to_user += to_user;
    bytes_to_target += to_target;
  }

 private:
  ManualClock clock_;
  asciicast::SessionLogOptions opts_;
  std::unique_ptr<asciicast::SessionLog> log_;
  PolicyDecision decision_;
  Target target_;
};

}  // namespace castgate::testing
