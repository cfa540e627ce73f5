// One SSH connection's event stream: every line is a JSON object with the common fields
// (timestamp, instance, session, sequence, hash chain, identity, source, target, login) and the
// event's own fields. Lines are canonical JSON (see json_text.h) and at most max_line bytes.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/checkpoint.h"
#include "asciicast/line_sink.h"
#include "asciicast/record_signer.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/identity.h"

namespace castgate::asciicast {

struct Endpoint {
  std::string address;  // IP address or host name
  int port = 0;
};

// What an event is. Its ECS category and type come from the catalog (event_catalog.h).
struct EventKind {
  std::string action;   // castgate's name: "session.start", "auth.failure", ... (in the catalog)
  std::string outcome;  // ECS event.outcome: "success", "failure" or empty
  std::string reason;   // ECS event.reason: human-readable, never a secret
  // ECS event.type when it depends on the event (an upload is creation, a download access):
  // empty for the catalog's.
  std::vector<std::string> type = {};
};

// ECS event.id of the line `seq` of chain `chain` (castgate.session): "<chain>:<seq>". What makes
// a line unique in castgate's hash chains, so every copy of a line (a shipper retrying) has the
// same id and a store can deduplicate on it.
std::string event_id(std::string_view chain, uint64_t seq);

// Told of every event a session log writes, except the terminal's asciicast lines, with the time
// since the log began: the gateway's metrics count what the record says. Called on the thread
// that writes the event; must not block.
class EventObserver {
 public:
  virtual ~EventObserver() = default;
  virtual void observe(const EventKind& kind, const nlohmann::json& fields,
                       std::chrono::microseconds since_start) = 0;
};

struct SessionLogOptions {
  std::string instance;  // gateway instance name
  size_t max_line = 8192;
  const RecordSigner* signing_key = nullptr;  // signs the last event (the recording key)
  // Told when the chain starts (its first line) and ends, for the checkpoints of the process that
  // writes it (checkpoint.h); null for chains no checkpoint covers.
  CheckpointLedger* ledger = nullptr;
  // Terminal text also in ECS "message" (searchable where asciicast.event, a mixed-type array,
  // is not indexed): each line then holds its text twice, and half as much of it.
  bool searchable_text = false;
  EventObserver* observer = nullptr;  // none: nobody counts
};

class SessionLog {
 public:
  SessionLog(SessionLogOptions options, std::string session_id, Endpoint source, LineSink& sink,
             std::shared_ptr<Backlog> backlog, const Clock& clock);

  const std::string& session_id() const { return session_id_; }
  uint64_t next_seq() const { return seq_; }
  bool ended() const { return ended_; }

  // Called once the user is known; every later line carries identity, target and login.
  void set_identity(const Identity& identity);
  void set_target(const std::string& target_name, const Endpoint& target, const std::string& login);

  // The bytes a channel or session carried, into `fields`: castgate.bytes, and ECS's
  // source.bytes (sent by the user) and destination.bytes (sent back by the target) where the
  // line names a source and a destination. A connection refused before it was routed has no
  // destination: an ECS destination is its address, not a byte count.
  void add_byte_counts(nlohmann::json& fields, uint64_t to_target, uint64_t to_user) const;

  // A generic event. `fields` holds extra top-level members (ECS "file", "process", ... or
  // "castgate" members, which are merged); every string in it passes the untrusted-text gate
  // (untrusted_text.h). No line is ever longer than max_line: the string at JSON pointer
  // `split_pointer` is cut into several events marked castgate.part; other long strings are
  // truncated with a marker and their digest, and named in castgate.truncated.
  void emit(const EventKind& kind, nlohmann::json fields = nlohmann::json::object(),
            std::optional<int> channel = std::nullopt, const char* split_pointer = nullptr);

  // The hot path for asciicast events: writes [t, code, data] for `channel` in one line, with as
  // much of `data_utf8` (valid UTF-8) as fits the line limit. Returns the bytes it took.
  size_t emit_asciicast(int channel, std::string_view action, int64_t t_micros, char code,
                        std::string_view data_utf8);

  // An event signed like the last one, but not the last (a checkpoint): it stands on its own.
  void emit_signed(const EventKind& kind, nlohmann::json fields);
  // The last event of the session: carries the final chain hash and the signature.
  void end(const EventKind& kind, nlohmann::json fields);
  // Continues a chain another process wrote up to `next_seq - 1` (whose line hashes to
  // `prev_hash`): the parent closing the sessions of a worker process that died.
  void resume(uint64_t next_seq, std::string prev_hash);

  bool has_room() const { return backlog_->has_room() && sink_.has_room(); }
  const std::shared_ptr<Backlog>& backlog() const { return backlog_; }
  size_t max_line() const { return options_.max_line; }

 private:
  nlohmann::json base_event(const EventKind& kind, std::optional<int> channel);
  // The next event of the chain: common members, `fields` (through the untrusted-text gate),
  // and its place in the chain.
  nlohmann::json next_event(const EventKind& kind, nlohmann::json fields,
                            std::optional<int> channel);
  // The line's place in its chain: castgate.seq and .prev, ECS event.sequence and event.id.
  void place_in_chain(nlohmann::json& j) const;
  // Cuts the longest strings of `j` (not `keep`, never the chain members) with a marker and
  // digest, each named in castgate.truncated, until its line is at most `limit` bytes.
  bool fit(nlohmann::json& j, size_t limit, const std::string& keep);
  void emit_parts(nlohmann::json& j, const nlohmann::json::json_pointer& ptr,
                  const std::string& text);
  void submit(std::string_view line);
  void observe(const EventKind& kind, const nlohmann::json& fields);
  // The canonical line of `j`, signed when there is a signing key.
  std::string signed_line(nlohmann::json& j);
  void rebuild_fragments();
  // related.user from user.name and destination.user.name; then the fragments.
  void rebuild_related();

  const SessionLogOptions options_;
  const std::string session_id_;
  LineSink& sink_;
  std::shared_ptr<Backlog> backlog_;
  const Clock& clock_;
  const std::chrono::steady_clock::time_point started_;
  nlohmann::json common_;  // castgate/destination/source/user members shared by all events
  // Fragments of the canonical line around the variable parts, for emit_asciicast().
  std::string frag_castgate_mid_;   // members of "castgate" between "channel" and "prev"
  std::string frag_castgate_tail_;  // members of "castgate" after "seq"
  std::string frag_before_event_;   // top-level members between "castgate" and "event"
  std::string frag_after_event_;    // top-level members after "event"
  std::string frag_event_id_;       // "id":"<session>:  (event.id without its sequence number)
  uint64_t seq_ = 0;
  std::string prev_hash_;
  std::string suffix_;  // scratch: the part of an asciicast line after its data
  std::string line_;    // scratch: an asciicast line (the sink copies it)
  bool ended_ = false;
};

}  // namespace castgate::asciicast
