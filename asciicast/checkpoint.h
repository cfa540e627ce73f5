// Completeness across sessions. Each castgate process that starts record chains (the parent: its
// worker processes' chains; a worker process: its sessions' chains) keeps a ledger of the chains
// it started and ended, and now and then writes a signed `checkpoint` into its own chain: what
// started and ended since the last one, what is still open, and running totals. A verifier can
// then tell a session deleted whole from the store (a checkpoint names it), a checkpoint removed
// (its chain has a gap), and a session still open (the newest checkpoint lists it open) from one
// whose end was cut off (a checkpoint says it ended, or its checkpoints stop while the instance
// went on writing). See docs/events.md, "Completeness".
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace castgate::asciicast {

class SessionLog;

// Thread-safe: sessions on several threads report into one ledger.
class CheckpointLedger {
 public:
  // What changed since the last take(), and what is open now.
  struct Period {
    std::vector<std::string> started;  // in the order they started
    std::vector<std::string> ended;    // in the order they ended
    std::vector<std::string> open;     // sorted
    uint64_t total_started = 0;        // since the process began
    uint64_t total_ended = 0;
  };

  void started(std::string_view chain);
  void ended(std::string_view chain);
  Period take();

 private:
  std::mutex mu_;
  std::vector<std::string> started_;
  std::vector<std::string> ended_;
  std::set<std::string> open_;
  uint64_t total_started_ = 0;
  uint64_t total_ended_ = 0;
};

// The prefix of every chain a worker process starts: a worker's own chain is "worker-", that
// prefix and 10 more characters (gateway.cpp names them so). Empty if `chain` is not of that form.
std::string worker_chain_prefix(std::string_view chain);

// SHA-256 (hex) over what a checkpoint lists as started and ended, in order: the "digest" member.
std::string checkpoint_digest(const CheckpointLedger::Period& period);

// Writes checkpoint `number` into `log` (the process's own chain): one `checkpoint` event, or
// several parts when the lists do not fit one line, each signed. `last`: the process is ending
// and this is its last checkpoint (nothing may be open).
void write_checkpoint(SessionLog& log, uint64_t number, std::chrono::seconds interval,
                      const CheckpointLedger::Period& period, bool last);

}  // namespace castgate::asciicast
