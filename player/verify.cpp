#include "player/verify.h"

#include <simdjson.h>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "asciicast/chain.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/text.h"

namespace castgate::player {

using nlohmann::json;

std::vector<RecordingKey> load_recording_keys(const std::string& path) {
  std::vector<RecordingKey> keys;
  for (auto& line : split(read_file(path), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto parts = split(line, ' ');
    if (parts.size() < 2 || parts[0] != "ssh-ed25519")
      throw std::runtime_error(path + ": expected \"ssh-ed25519 <base64>\" lines");
    auto blob = base64_decode(parts[1]);
    // blob: string "ssh-ed25519", string key(32)
    if (!blob || blob->size() != 4 + 11 + 4 + 32)
      throw std::runtime_error(path + ": not an Ed25519 public key");
    std::string raw = blob->substr(blob->size() - 32);
    keys.push_back({asciicast::recording_key_id(raw), raw});
  }
  if (keys.empty()) throw std::runtime_error(path + ": no key found");
  return keys;
}

Verifier::Verifier(std::vector<RecordingKey> keys, VerifyOptions options)
    : keys_(std::move(keys)), options_(std::move(options)) {}

void Verifier::add_file(const MappedFile& file) {
  for_each_line(file, options_.session, [&](std::string_view line, size_t line_no) {
    StoredEvent e;
    if ((!unwrap_line(line, e) || !add_event(e, file.path())) && options_.strict &&
        foreign_.size() < 20)
      foreign_.push_back(file.path() + ":" + std::to_string(line_no) +
                         ": not a castgate event (or not valid JSON/UTF-8)");
  });
}

bool Verifier::add_event(const StoredEvent& e, const std::string& where) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS)
    return false;
  std::string_view session, prev;
  uint64_t seq = UINT64_MAX;
  bool final = false;
  if (root.at_pointer("/castgate/session").get_string().get(session) != simdjson::SUCCESS ||
      root.at_pointer("/castgate/prev").get_string().get(prev) != simdjson::SUCCESS)
    return false;
  if (root.at_pointer("/castgate/seq").get_uint64().get(seq) != simdjson::SUCCESS) seq = UINT64_MAX;
  if (root.at_pointer("/castgate/final").get_bool().get(final) != simdjson::SUCCESS) final = false;
  if (!options_.session.empty() && session != options_.session) return true;
  Item it;
  it.seq = seq;
  it.prev = std::string(prev);
  it.order = order_++;
  it.exact = e.exact;
  it.hash = asciicast::chain_hash(e.canonical);
  it.final = final;
  it.where = where;
  if (it.final) it.canonical = std::string(e.canonical);
  sessions_[std::string(session)].push_back(std::move(it));
  return true;
}

std::vector<SessionVerdict> Verifier::finish() {
  std::vector<SessionVerdict> verdicts;
  for (auto& [session, items] : sessions_) {
    SessionVerdict v;
    v.session = session;
    // File order first: a later sequence number before an earlier one means lines were moved.
    uint64_t highest = 0;
    bool any = false;
    for (const auto& it : items) {
      if (any && it.seq < highest && !options_.allow_reorder) {
        v.problems.push_back("event " + std::to_string(it.seq) + " comes after event " +
                             std::to_string(highest) + " (reordered)");
        break;
      }
      highest = std::max(highest, it.seq);
      any = true;
    }
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& a, const Item& b) { return a.seq < b.seq; });
    std::vector<const Item*> chain;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!chain.empty() && chain.back()->seq == items[i].seq) {
        if (chain.back()->hash == items[i].hash) {
          ++v.exact_duplicates;
        } else {
          v.problems.push_back("event " + std::to_string(items[i].seq) +
                               " appears twice with different content");
        }
        continue;
      }
      chain.push_back(&items[i]);
    }
    v.events = chain.size();
    uint64_t expect = 0;
    const Item* prev = nullptr;
    for (const Item* it : chain) {
      if (it->seq != expect) {
        v.problems.push_back(it->seq > expect ? "events " + std::to_string(expect) + ".." +
                                                    std::to_string(it->seq - 1) + " are missing"
                                              : "bad sequence number");
        expect = it->seq;
      } else if (prev) {
        if (it->prev != prev->hash) {
          v.problems.push_back("event " + std::to_string(it->seq - 1) + " was altered (event " +
                               std::to_string(it->seq) + " names a different hash)");
        }
      } else if (it->seq == 0 && it->prev != asciicast::kGenesisHash) {
        v.problems.push_back("event 0 does not start a chain");
      }
      prev = it;
      ++expect;
    }
    if (chain.empty() || !chain.back()->final) {
      v.problems.push_back(
          "no final event: the record is truncated (or the session is still open)");
    } else {
      json last = json::parse(chain.back()->canonical, nullptr, false);
      auto& c = last["castgate"];
      if (!c.contains("sig") || !c.contains("signer")) {
        if (options_.require_signature) v.problems.push_back("the final event is not signed");
      } else if (!c["sig"].is_string() || !c["signer"].is_string()) {
        v.problems.push_back("the final event's signature is malformed");
      } else {
        std::string signer = c["signer"].get<std::string>();
        auto sig = base64_decode(c["sig"].get<std::string>());
        c.erase("sig");
        std::string payload = asciicast::signature_payload(last.dump());
        auto key = std::find_if(keys_.begin(), keys_.end(),
                                [&](const RecordingKey& k) { return k.id == signer; });
        if (key == keys_.end()) {
          if (options_.require_signature)
            v.problems.push_back("signed by " + signer + ", which is not a trusted recording key");
        } else if (!sig || !ed25519_verify(key->raw, payload, *sig)) {
          v.problems.push_back("the signature of the final event does not verify (altered)");
        } else {
          v.signed_ok = true;
        }
      }
    }
    v.ok = v.problems.empty();
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

}  // namespace castgate::player
