#include "asciicast/checkpoint.h"

#include <nlohmann/json.hpp>

#include "asciicast/json_text.h"
#include "asciicast/session_log.h"
#include "common/crypto.h"

namespace castgate::asciicast {

using nlohmann::json;

void CheckpointLedger::started(std::string_view chain) {
  std::lock_guard lock(mu_);
  started_.emplace_back(chain);
  open_.emplace(chain);
  ++total_started_;
}

void CheckpointLedger::ended(std::string_view chain) {
  std::lock_guard lock(mu_);
  if (open_.erase(std::string(chain)) == 0) return;  // never started here, or ended twice
  ended_.emplace_back(chain);
  ++total_ended_;
}

CheckpointLedger::Period CheckpointLedger::take() {
  std::lock_guard lock(mu_);
  Period p;
  p.started.swap(started_);
  p.ended.swap(ended_);
  p.open.assign(open_.begin(), open_.end());
  p.total_started = total_started_;
  p.total_ended = total_ended_;
  return p;
}

std::string worker_chain_prefix(std::string_view chain) {
  constexpr std::string_view kHead = "worker-";
  constexpr size_t kTail = 10;
  if (!chain.starts_with(kHead) || chain.size() <= kHead.size() + kTail) return "";
  return std::string(chain.substr(kHead.size(), chain.size() - kHead.size() - kTail));
}

std::string checkpoint_digest(const CheckpointLedger::Period& period) {
  std::string text = "started\n";
  for (const auto& id : period.started) text += id + "\n";
  text += "ended\n";
  for (const auto& id : period.ended) text += id + "\n";
  return sha256_hex(text);
}

void write_checkpoint(SessionLog& log, uint64_t number, std::chrono::seconds interval,
                      const CheckpointLedger::Period& period, bool last) {
  // Chain ids are short (at most 63 bytes, escaped as they are): half a line of them per part
  // leaves room for everything else the line carries.
  const size_t budget = log.max_line() / 2;
  struct Part {
    json started = json::array(), ended = json::array(), open = json::array();
  };
  std::vector<Part> parts(1);
  size_t used = 0;
  auto add = [&](json Part::*list, const std::string& id) {
    size_t size = json_string_size(id) + 1;
    if (used + size > budget && used > 0) {
      parts.emplace_back();
      used = 0;
    }
    (parts.back().*list).push_back(id);
    used += size;
  };
  for (const auto& id : period.started) add(&Part::started, id);
  for (const auto& id : period.ended) add(&Part::ended, id);
  for (const auto& id : period.open) add(&Part::open, id);
  const std::string digest = checkpoint_digest(period);
  for (size_t i = 0; i < parts.size(); ++i) {
    json c{{"number", number},
           {"interval", interval.count()},
           {"started", std::move(parts[i].started)},
           {"ended", std::move(parts[i].ended)},
           {"open", std::move(parts[i].open)},
           {"counts",
            {{"started", period.started.size()},
             {"ended", period.ended.size()},
             {"open", period.open.size()}}},
           {"totals", {{"started", period.total_started}, {"ended", period.total_ended}}},
           {"digest", digest},
           {"last", last}};
    if (parts.size() > 1) c["part"] = {{"index", i}, {"count", parts.size()}};
    log.emit_signed(EventKind{"checkpoint", "", ""},
                    json{{"castgate", {{"checkpoint", std::move(c)}}}});
  }
}

}  // namespace castgate::asciicast
