// Checks that each session's events are complete and untouched: sequence numbers from 0 without
// gaps, in order, each event naming the SHA-256 of the one before (castgate.prev), and a final
// event signed with the gateway's recording key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "player/log_reader.h"

namespace castgate::player {

struct RecordingKey {
  std::string id;   // "ed25519:..." as castgate.signer names it
  std::string raw;  // 32-byte Ed25519 public key
};
// Reads "ssh-ed25519 AAAA... comment" lines (castgate --print-recording-key).
std::vector<RecordingKey> load_recording_keys(const std::string& path);

struct SessionVerdict {
  std::string session;
  uint64_t events = 0;
  uint64_t exact_duplicates = 0;  // delivered twice by a shipper, identical: harmless
  bool ok = false;
  bool signed_ok = false;
  std::vector<std::string> problems;
};

struct VerifyOptions {
  std::string session;         // empty: every session
  bool allow_reorder = false;  // order by sequence number instead of file order
  bool require_signature = true;
  bool strict = false;  // every line must be a castgate event (a raw castgate log)
};

class Verifier {
 public:
  Verifier(std::vector<RecordingKey> keys, VerifyOptions options);
  void add_file(const MappedFile& file);
  std::vector<SessionVerdict> finish();
  // Lines that are not castgate events (reported in strict mode).
  const std::vector<std::string>& foreign_lines() const { return foreign_; }

 private:
  struct Item {
    uint64_t seq = 0;
    uint64_t order = 0;  // position in the input
    std::string prev;
    std::string hash;       // of the exact bytes (or the canonical form)
    std::string canonical;  // kept only when needed again: final events and fallbacks
    bool exact = false;
    bool final = false;
    std::string where;
  };
  bool add_event(const StoredEvent& e, const std::string& where);
  std::vector<std::string> foreign_;

  std::vector<RecordingKey> keys_;
  VerifyOptions options_;
  std::map<std::string, std::vector<Item>> sessions_;
  uint64_t order_ = 0;
};

}  // namespace castgate::player
