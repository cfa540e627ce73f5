// Checks that each session's events are complete and untouched: sequence numbers from 0 without
// gaps, in order, each event naming the SHA-256 of the one before (castgate.prev), and a final
// event signed with the gateway's recording key.
#pragma once

#include <cstdint>
#include <map>
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
  std::vector<std::string> problems;
  VerifiedChain verified;  // what may be shown of the session; all of it when ok
};

struct VerifyOptions {
  std::string session;         // empty: every session
  bool allow_reorder = false;  // order by sequence number instead of file order
  bool require_signature = true;
  bool strict = false;  // every line must be a castgate event (a raw castgate log)
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
  SessionVerdict judge(const std::string& session, std::vector<Item>& items) const;
  SignatureCheck check_signature(const Item& final) const;
  VerifiedChain verified_chain(const std::vector<Item>& by_seq) const;

  std::vector<RecordingKey> keys_;
  VerifyOptions options_;
  std::map<std::string, std::vector<Item>> sessions_;
  std::map<std::string, BadLines> bad_lines_;  // by the session the lines name
  std::vector<std::string> foreign_;
  uint64_t order_ = 0;
};

}  // namespace castgate::player
