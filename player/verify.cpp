#include "player/verify.h"

#include <simdjson.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_set>

#include "asciicast/chain.h"
#include "asciicast/utf8.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/text.h"

namespace castgate::player {

using nlohmann::json;

namespace {

// How many broken or foreign lines are described one by one (the rest are counted).
constexpr size_t kLinesDescribed = 20;

// Line numbers for the few lines that are reported, where for_each_line did not count them
// (it skips to the lines holding the session id): counts forward from the last line asked for,
// so one file costs one pass at most.
class LineCounter {
 public:
  explicit LineCounter(std::string_view data) : counted_to_(data.data()) {}
  size_t number_of(std::string_view line) {
    number_ += static_cast<size_t>(std::count(counted_to_, line.data(), '\n'));
    counted_to_ = line.data();
    return number_;
  }

 private:
  const char* counted_to_;
  size_t number_ = 1;
};

// Why `line`, which unwrap_line could not read as an event, is not one.
LineError unreadable_line_error(std::string_view line) {
  if (!asciicast::utf8_valid(line)) return LineError::kNotUtf8;
  size_t json = line.find('{');  // after a container runtime's "<time> stdout F "
  if (json == std::string_view::npos || !json::accept(line.substr(json)))
    return LineError::kNotJson;
  return LineError::kNotAnEvent;
}

}  // namespace

std::string_view to_string(LineError error) {
  switch (error) {
    case LineError::kNone:
      return "is a castgate event";
    case LineError::kNotUtf8:
      return "is not valid UTF-8";
    case LineError::kNotJson:
      return "is not valid JSON (cut short?)";
    case LineError::kNotAnEvent:
      return "is not a castgate event";
    case LineError::kNoSeqOrPrev:
      return "has no castgate.seq or castgate.prev";
  }
  return "is not a castgate event";
}

VerifiedChain::VerifiedChain(std::vector<Member> members) : members_(std::move(members)) {
  auto order = [](const Member& a, const Member& b) {
    return a.seq != b.seq ? a.seq < b.seq : a.hash < b.hash;
  };
  std::sort(members_.begin(), members_.end(), order);
  members_.erase(std::unique(members_.begin(), members_.end(),
                             [](const Member& a, const Member& b) {
                               return a.seq == b.seq && a.hash == b.hash;
                             }),
                 members_.end());
}

bool VerifiedChain::contains(uint64_t seq, std::string_view hash) const {
  auto at = std::lower_bound(members_.begin(), members_.end(), seq,
                             [](const Member& m, uint64_t s) { return m.seq < s; });
  for (; at != members_.end() && at->seq == seq; ++at)
    if (at->hash == hash) return true;
  return false;
}

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
  LineCounter lines(file.data());
  for_each_line(file, options_.session, [&](std::string_view line, size_t line_no) {
    StoredEvent e;
    LineError error = unwrap_line(line, e) ? add_event(e) : LineError::kNotAnEvent;
    if (error == LineError::kNone) return;
    std::string_view session = session_named_in(line);
    if (session.empty() && (!options_.strict || foreign_.size() >= kLinesDescribed)) return;
    if (error == LineError::kNotAnEvent) error = unreadable_line_error(line);
    if (line_no == 0) line_no = lines.number_of(line);
    add_bad_line(session, error, file.path() + ":" + std::to_string(line_no));
  });
}

LineError Verifier::add_event(const StoredEvent& e) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto parsed = parser.parse(e.canonical.data(), e.canonical.size()).get(root);
  if (parsed == simdjson::UTF8_ERROR) return LineError::kNotUtf8;
  if (parsed != simdjson::SUCCESS) return LineError::kNotJson;
  std::string_view session, prev;
  uint64_t seq = 0;
  bool final = false;
  if (root.at_pointer("/castgate/session").get_string().get(session) != simdjson::SUCCESS)
    return LineError::kNotAnEvent;
  if (!options_.session.empty() && session != options_.session) return LineError::kNone;
  if (root.at_pointer("/castgate/prev").get_string().get(prev) != simdjson::SUCCESS ||
      root.at_pointer("/castgate/seq").get_uint64().get(seq) != simdjson::SUCCESS)
    return LineError::kNoSeqOrPrev;
  if (root.at_pointer("/castgate/final").get_bool().get(final) != simdjson::SUCCESS) final = false;
  Item it;
  it.seq = seq;
  it.prev = std::string(prev);
  it.order = order_++;
  it.exact = e.exact;
  it.hash = asciicast::chain_hash(e.canonical);
  it.final = final;
  if (it.final) it.canonical = std::string(e.canonical);
  sessions_[std::string(session)].push_back(std::move(it));
  return LineError::kNone;
}

void Verifier::add_bad_line(std::string_view session, LineError error, const std::string& where) {
  if (session.empty()) {
    foreign_.push_back(where + " " + std::string(to_string(error)));
    return;
  }
  // Whether the session is one of the input's is only known at the end.
  auto& bad = bad_lines_[std::string(session)];
  if (bad.first.size() < kLinesDescribed) bad.first.push_back({where, error});
  ++bad.count;
}

std::vector<SessionVerdict> Verifier::finish() {
  // A line naming a session that has no whole event in the input is not taken for part of a
  // castgate record (another program's JSON in a shared container log may have a "session"
  // member), except when that very session was asked for.
  for (auto& [session, bad] : bad_lines_) {
    if (sessions_.count(session) || session == options_.session) {
      sessions_[session];
      continue;
    }
    for (auto& [where, error] : bad.first)
      if (options_.strict && foreign_.size() < kLinesDescribed)
        foreign_.push_back(where + " " + std::string(to_string(error)) + " (it names session " +
                           session + ", of which the input holds no event)");
  }
  std::vector<SessionVerdict> verdicts;
  for (auto& [session, items] : sessions_) {
    SessionVerdict v = judge(session, items);
    if (auto bad = bad_lines_.find(session); bad != bad_lines_.end()) {
      for (auto& [where, error] : bad->second.first)
        v.problems.push_back(where + " names this session but " + std::string(to_string(error)));
      if (bad->second.count > bad->second.first.size())
        v.problems.push_back("and " + std::to_string(bad->second.count - bad->second.first.size()) +
                             " more lines naming this session that are not castgate events");
      v.ok = false;
    }
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

SessionVerdict Verifier::judge(const std::string& session, std::vector<Item>& items) const {
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
    v.problems.push_back("no final event: the record is truncated (or the session is still open)");
  } else {
    SignatureCheck sig = check_signature(*chain.back());
    switch (sig.status) {
      case SignatureStatus::kValid:
        v.signed_ok = true;
        break;
      case SignatureStatus::kUnsigned:
        if (options_.require_signature) v.problems.push_back("the final event is not signed");
        break;
      case SignatureStatus::kMalformed:
        v.problems.push_back("the final event's signature is malformed");
        break;
      case SignatureStatus::kUntrustedSigner:
        if (options_.require_signature)
          v.problems.push_back("signed by " + sig.signer +
                               ", which is not a trusted recording key");
        break;
      case SignatureStatus::kInvalid:
        v.problems.push_back("the signature of the final event does not verify (altered)");
        break;
    }
  }
  v.verified = verified_chain(items);
  v.ok = v.problems.empty();
  return v;
}

Verifier::SignatureCheck Verifier::check_signature(const Item& final) const {
  SignatureCheck check;
  json last = json::parse(final.canonical, nullptr, false);
  if (!last.is_object() || !last["castgate"].is_object()) {
    check.status = SignatureStatus::kMalformed;
    return check;
  }
  auto& c = last["castgate"];
  if (!c.contains("sig") || !c.contains("signer")) {
    check.status = SignatureStatus::kUnsigned;
    return check;
  }
  if (!c["sig"].is_string() || !c["signer"].is_string()) {
    check.status = SignatureStatus::kMalformed;
    return check;
  }
  check.signer = c["signer"].get<std::string>();
  auto sig = base64_decode(c["sig"].get<std::string>());
  c.erase("sig");
  std::string payload = asciicast::signature_payload(last.dump());
  auto key = std::find_if(keys_.begin(), keys_.end(),
                          [&](const RecordingKey& k) { return k.id == check.signer; });
  if (key == keys_.end())
    check.status = SignatureStatus::kUntrustedSigner;
  else if (!sig || !ed25519_verify(key->raw, payload, *sig))
    check.status = SignatureStatus::kInvalid;
  else
    check.status = SignatureStatus::kValid;
  return check;
}

VerifiedChain Verifier::verified_chain(const std::vector<Item>& by_seq) const {
  // The member at `seq` is the event there whose hash the member above names; there may be
  // other events with that seq (forged, or from another chain) and they are passed over.
  auto find = [&](uint64_t seq, const std::string& hash) -> const Item* {
    auto at = std::lower_bound(by_seq.begin(), by_seq.end(), seq,
                               [](const Item& it, uint64_t s) { return it.seq < s; });
    for (; at != by_seq.end() && at->seq == seq; ++at)
      if (at->hash == hash) return &*at;
    return nullptr;
  };
  std::vector<VerifiedChain::Member> members;
  std::unordered_set<std::string_view> walked;  // finals already followed (a copy adds nothing)
  for (const Item& end : by_seq) {
    if (!end.final || !walked.insert(end.hash).second) continue;
    if (check_signature(end).status != SignatureStatus::kValid) continue;
    for (const Item* member = &end; member;
         member = member->seq ? find(member->seq - 1, member->prev) : nullptr)
      members.push_back({member->seq, member->hash});
  }
  return VerifiedChain(std::move(members));
}

}  // namespace castgate::player
