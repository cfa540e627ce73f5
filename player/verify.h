// Checks that each session's events are complete and untouched: sequence numbers from 0 without
// gaps, in order, each event naming the SHA-256 of the one before (castgate.prev), and a final
// event signed with the gateway's recording key.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "player/log_reader.h"

namespace castgate::player {

struct RecordingKey {
  std::string id;   // "ed25519:..." as castgate.signer names it
  std::string raw;  // 32-byte Ed25519 public key
};
// Reads "ssh-ed25519 AAAA... comment" lines (castgate --print-recording-key).
std::vector<RecordingKey> load_recording_keys(const std::string& path);

// The events a valid signature vouches for, as (castgate.seq, chain hash of the canonical line):
// the signed final event and, walking backwards, each event whose chain hash the member after it
// names as castgate.prev, down to seq 0 or the first link that does not hold. A line with a
// member's seq but other content is not a member, wherever it sits in the input.
class VerifiedChain {
 public:
  struct Member {
    uint64_t seq = 0;
    std::string hash;  // asciicast::chain_hash, hex
  };
  VerifiedChain() = default;
  explicit VerifiedChain(std::vector<Member> members);  // any order, duplicates allowed
  bool contains(uint64_t seq, std::string_view hash) const;
  size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }

 private:
  std::vector<Member> members_;  // by seq, each (seq, hash) once
};

struct SessionVerdict {
  std::string session;
  uint64_t events = 0;
  uint64_t exact_duplicates = 0;  // delivered twice by a shipper, identical: harmless
  bool ok = false;
  bool signed_ok = false;
  // The gateway lost the rest of the session: the chain is whole and its final event, validly
  // signed, carries castgate.lost (written by the parent process when the worker process serving
  // the session died). Authentic but incomplete; `ok` stays false and `problems` empty.
  // castgate.lost anywhere else, or on a final event whose signature fails, means nothing.
  bool lost = false;
  std::string lost_reason;  // the final event's event.reason, as recorded (print terminal_safe)
  // With castgate.lost.cut (the worker died while writing a line): where the one cut-short line
  // naming the session is ("FILE:LINE"), not a problem since the signed final event owns to it.
  std::string lost_cut_line;
  // No final event, but the newest checkpoint of the process that writes it, recent for its
  // instance, names it open: a session still running when the store was read, not a truncated
  // one. `ok` stays false and `problems` empty; open_note says which checkpoint.
  bool open = false;
  std::string open_note;
  std::vector<std::string> problems;
  VerifiedChain verified;  // what may be shown of the session; all of it when ok or lost
};

struct VerifyOptions {
  std::string session;            // empty: every session
  bool allow_reorder = false;     // order by sequence number instead of file order
  bool require_signature = true;  // false: an unsigned final event (castgate.lost too) is accepted
  bool strict = false;            // every line must be a castgate event (a raw castgate log)
  // When the store was read (Unix seconds; 0: now): a session is OPEN only if its instance was
  // still writing then.
  int64_t now = 0;
};

// Why a stored line is not a castgate event.
enum class LineError {
  kNone,
  kNotUtf8,
  kNotJson,      // cut short, or not JSON at all
  kNotAnEvent,   // JSON, but not castgate's nor a container runtime's or shipper's form of it
  kNoSeqOrPrev,  // castgate.seq or castgate.prev missing or of the wrong type
};
std::string_view to_string(LineError error);

class Verifier {
 public:
  Verifier(std::vector<RecordingKey> keys, VerifyOptions options);
  void add_file(const MappedFile& file);
  // One verdict per session. A line that names a session of the input (or the session asked
  // for) but is not a whole castgate event is a problem of that session.
  std::vector<SessionVerdict> finish();
  // After finish(): lines that are not castgate events and name no session of the input
  // (reported in strict mode).
  const std::vector<std::string>& foreign_lines() const { return foreign_; }

 private:
  struct Item {
    uint64_t seq = 0;
    uint64_t order = 0;  // position in the input
    std::string prev;
    std::string hash;       // of the exact bytes (or the canonical form)
    std::string canonical;  // kept only for final events, to check their signature
    bool exact = false;
    bool final = false;
    bool checkpoint = false;  // a signed checkpoint (canonical kept too)
  };
  struct ChainMeta {
    std::string instance;
    std::string newest;  // the latest @timestamp among its lines (RFC 3339, castgate's form)
  };
  // What a final event says about a session the gateway lost (castgate.lost), if it does.
  struct LostClaim {
    bool lost = false;
    bool cut = false;  // the worker died while writing a line
    std::string reason;
  };
  struct BadLines {
    uint64_t count = 0;
    std::vector<std::pair<std::string, LineError>> first;  // where ("FILE:LINE") and what, a few
  };
  enum class SignatureStatus { kValid, kUnsigned, kMalformed, kUntrustedSigner, kInvalid };
  struct SignatureCheck {
    SignatureStatus status = SignatureStatus::kUnsigned;
    std::string signer;
  };

  LineError add_event(const StoredEvent& e);
  void add_bad_line(std::string_view session, LineError error, const std::string& where);
  SessionVerdict judge(const std::string& session, std::vector<Item>& items,
                       const BadLines* bad) const;
  SignatureCheck check_signature(const Item& final) const;
  static LostClaim lost_claim(const Item& final);
  VerifiedChain verified_chain(const std::vector<Item>& by_seq) const;
  // What the signed checkpoints say about the sessions: the ones missing from the store, open
  // ones told from truncated ones, checkpoints missing (docs/events.md, "Completeness").
  void check_completeness(std::vector<SessionVerdict>& verdicts);

  std::vector<RecordingKey> keys_;
  VerifyOptions options_;
  std::map<std::string, std::vector<Item>> sessions_;
  std::map<std::string, BadLines> bad_lines_;  // by the session the lines name
  std::map<std::string, ChainMeta> meta_;      // by session
  std::vector<std::string> foreign_;
  uint64_t order_ = 0;
};

// What `castgate-player verify` exits with.
inline constexpr int kVerifyExitOk = 0;      // every session OK
inline constexpr int kVerifyExitFailed = 1;  // a session failed, a line is foreign, or no session
inline constexpr int kVerifyExitLost = 3;    // the only sessions not OK are lost (authentic)
inline constexpr int kVerifyExitOpen = 4;    // ... are OPEN (still running), or LOST
int verify_exit_status(const std::vector<SessionVerdict>& verdicts, bool foreign_lines);

// Seconds since the epoch of an RFC 3339 time in UTC ("2026-03-03T09:15:02.123456Z"); 0 if it
// is not one.
int64_t rfc3339_seconds(std::string_view text);

// "OK", "LOST", "OPEN" or "FAILED".
std::string_view verdict_word(const SessionVerdict& v);

// A verdict's findings, one per line after `indent`, recorded text escaped (terminal_safe): the
// loss first if the session is lost, then the problems.
void write_findings(std::ostream& out, const SessionVerdict& v, std::string_view indent);

// What `castgate-player verify` prints on stdout: per session a line (OK/LOST/FAILED) with its
// findings, the lines that are not castgate events ("FAILED FILE:LINE ..."), and a summary line;
// with `json`, one JSON object per session instead of the session lines and no summary. Returns
// the exit status.
int write_verify_report(std::ostream& out, const std::vector<SessionVerdict>& verdicts,
                        const std::vector<std::string>& foreign_lines, bool json);

}  // namespace castgate::player
