#include "player/verify.h"

#include <simdjson.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_set>

#include "asciicast/chain.h"
#include "asciicast/checkpoint.h"
#include "asciicast/untrusted_text.h"
#include "asciicast/utf8.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/text.h"
#include "player/terminal_text.h"

namespace castgate::player {

using nlohmann::json;

namespace {

// The problem of a chain without its final event, until the checkpoints tell more.
constexpr std::string_view kNoFinalEvent =
    "no final event: the record is truncated (or the session is still open)";

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

int64_t rfc3339_seconds(std::string_view text) {
  std::tm tm{};
  std::string s(text.substr(0, 19));
  if (s.size() != 19 || !strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

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
  simdjson::dom::object checkpoint_member;
  bool checkpoint = root.at_pointer("/castgate/checkpoint").get_object().get(checkpoint_member) ==
                    simdjson::SUCCESS;
  // The signature is checked on another parse of the final event: it must read the same. A line
  // with a key twice (two "castgate" objects, say) would read one way here and another way there,
  // so a final event must be exactly its canonical form, which has each key once.
  if (final || checkpoint) {
    json j = json::parse(e.canonical, nullptr, false);
    if (j.is_discarded() || asciicast::canonical_dump(j) != e.canonical)
      return LineError::kNotAnEvent;
  }
  Item it;
  it.seq = seq;
  it.prev = std::string(prev);
  it.order = order_++;
  it.exact = e.exact;
  it.hash = asciicast::chain_hash(e.canonical);
  it.final = final;
  it.checkpoint = checkpoint;
  if (it.final || it.checkpoint) it.canonical = std::string(e.canonical);
  auto& items = sessions_[std::string(session)];
  auto& meta = meta_[std::string(session)];
  std::string_view time, instance;
  if (root["@timestamp"].get_string().get(time) == simdjson::SUCCESS && time > meta.newest)
    meta.newest = std::string(time);
  if (items.empty() &&
      root.at_pointer("/castgate/instance").get_string().get(instance) == simdjson::SUCCESS)
    meta.instance = std::string(instance);
  items.push_back(std::move(it));
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
    auto bad = bad_lines_.find(session);
    verdicts.push_back(judge(session, items, bad != bad_lines_.end() ? &bad->second : nullptr));
  }
  check_completeness(verdicts);
  return verdicts;
}

SessionVerdict Verifier::judge(const std::string& session, std::vector<Item>& items,
                               const BadLines* bad) const {
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
  LostClaim lost;
  if (chain.empty() || !chain.back()->final) {
    v.problems.push_back(std::string(kNoFinalEvent));
  } else {
    size_t before = v.problems.size();
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
    // Only the end that was accepted (validly signed, unless signatures are not required) says
    // whether the gateway lost the session.
    if (v.problems.size() == before) lost = lost_claim(*chain.back());
  }
  if (bad) {
    // The line the worker was writing when it died stands alone, cut short; the signed final
    // event says there is one (castgate.lost.cut), so one such line is no sign of tampering.
    bool the_cut_line = lost.cut && v.problems.empty() && bad->count == 1 &&
                        (bad->first[0].second == LineError::kNotJson ||
                         bad->first[0].second == LineError::kNotUtf8);
    if (the_cut_line) {
      v.lost_cut_line = bad->first[0].first;
    } else {
      for (auto& [where, error] : bad->first)
        v.problems.push_back(where + " names this session but " + std::string(to_string(error)));
      if (bad->count > bad->first.size())
        v.problems.push_back("and " + std::to_string(bad->count - bad->first.size()) +
                             " more lines naming this session that are not castgate events");
    }
  }
  v.verified = verified_chain(items);
  v.lost = lost.lost && v.problems.empty();
  if (v.lost) v.lost_reason = std::move(lost.reason);
  v.ok = v.problems.empty() && !v.lost;
  return v;
}

namespace {

// One checkpoint as its signed lines say (all its parts together).
struct Checkpoint {
  uint64_t number = 0;
  std::string time;  // of its first part
  int64_t interval = 0;
  bool last = false;
  uint64_t parts = 1;
  std::string digest;
  std::set<uint64_t> parts_seen;
  std::vector<std::string> started, ended, open;
};

// The members of a checkpoint, strictly: null when anything is missing or of another type (a
// signed line can still be malformed: verify must neither crash nor believe it).
struct CheckpointLine {
  uint64_t number = 0, index = 0, count = 1;
  int64_t interval = 0;
  bool last = false;
  std::string time, digest;
  std::vector<std::string> started, ended, open;
};

std::optional<CheckpointLine> read_checkpoint(const json& line) {
  auto c = line.find("castgate");
  if (c == line.end() || !c->is_object()) return std::nullopt;
  auto cp = c->find("checkpoint");
  auto time = line.find("@timestamp");
  if (cp == c->end() || !cp->is_object() || time == line.end() || !time->is_string())
    return std::nullopt;
  CheckpointLine out;
  out.time = time->get<std::string>();
  auto number = cp->find("number"), interval = cp->find("interval"), last = cp->find("last"),
       digest = cp->find("digest");
  if (number == cp->end() || !number->is_number_unsigned() || interval == cp->end() ||
      !interval->is_number_integer() || last == cp->end() || !last->is_boolean() ||
      digest == cp->end() || !digest->is_string())
    return std::nullopt;
  out.number = number->get<uint64_t>();
  out.interval = interval->get<int64_t>();
  out.last = last->get<bool>();
  out.digest = digest->get<std::string>();
  if (out.number < 1 || out.interval < 1 || out.interval > 3600) return std::nullopt;
  for (auto [name, list] : {std::pair{"started", &out.started}, std::pair{"ended", &out.ended},
                            std::pair{"open", &out.open}}) {
    auto l = cp->find(name);
    if (l == cp->end() || !l->is_array()) return std::nullopt;
    for (const auto& id : *l) {
      if (!id.is_string() || id.get_ref<const std::string&>().empty()) return std::nullopt;
      list->push_back(id.get<std::string>());
    }
  }
  if (auto part = cp->find("part"); part != cp->end()) {
    if (!part->is_object()) return std::nullopt;
    auto index = part->find("index"), count = part->find("count");
    if (index == part->end() || count == part->end() || !index->is_number_unsigned() ||
        !count->is_number_unsigned())
      return std::nullopt;
    out.index = index->get<uint64_t>();
    out.count = count->get<uint64_t>();
    if (out.count < 2 || out.count > 100000 || out.index >= out.count) return std::nullopt;
  }
  return out;
}

// Whether `writer` may speak of chain `id` in its checkpoints: the parent of its worker
// processes' chains and the signer's; a worker process of the chains it made.
bool may_name(const std::string& writer, const std::string& id) {
  if (writer.rfind("gateway-", 0) == 0)
    return id.rfind("worker-", 0) == 0 || id.rfind("signer-", 0) == 0;
  if (writer.rfind("worker-", 0) != 0) return false;
  std::string prefix = asciicast::worker_chain_prefix(writer);
  return !prefix.empty() && id.rfind(prefix, 0) == 0 && id.rfind("worker-", 0) != 0;
}

// What the checkpoints say of a chain they name.
struct Named {
  std::string state;   // "ended" (wins: it cannot be undone) or "open"/"started" (the newest)
  std::string writer;  // the chain whose checkpoint said so
  const Checkpoint* checkpoint = nullptr;
};

std::string describe(const std::string& writer, const Checkpoint& c) {
  return "checkpoint " + std::to_string(c.number) + " of " + writer + " (" + c.time + ")";
}

}  // namespace

void Verifier::check_completeness(std::vector<SessionVerdict>& verdicts) {
  // The checkpoints each chain holds, by number; only lines whose signature holds count.
  std::map<std::string, std::map<uint64_t, Checkpoint>> writers;
  std::map<std::string, std::vector<std::string>> writer_problems;
  for (const auto& [chain, items] : sessions_) {
    for (const auto& it : items) {
      if (!it.checkpoint) continue;
      SignatureCheck sig = check_signature(it);
      bool trusted =
          sig.status == SignatureStatus::kValid ||
          (!options_.require_signature && (sig.status == SignatureStatus::kUnsigned ||
                                           sig.status == SignatureStatus::kUntrustedSigner));
      if (!trusted) {
        writer_problems[chain].push_back("checkpoint event " + std::to_string(it.seq) +
                                         (sig.status == SignatureStatus::kInvalid
                                              ? " was altered (its signature does not verify)"
                                              : " is not signed by a trusted recording key"));
        continue;
      }
      auto line = read_checkpoint(json::parse(it.canonical, nullptr, false));
      if (!line) {
        writer_problems[chain].push_back("checkpoint event " + std::to_string(it.seq) +
                                         " is malformed; not believed");
        continue;
      }
      Checkpoint& cp = writers[chain][line->number];
      cp.number = line->number;
      if (cp.time.empty() || line->time < cp.time) cp.time = line->time;
      cp.interval = line->interval;
      cp.last = cp.last || line->last;
      cp.parts = line->count;
      cp.digest = line->digest;
      if (!cp.parts_seen.insert(line->index).second) continue;  // the same part twice
      for (auto [from, to] : {std::pair{&line->started, &cp.started},
                              std::pair{&line->ended, &cp.ended}, std::pair{&line->open, &cp.open}})
        to->insert(to->end(), from->begin(), from->end());
    }
  }
  // A worker process's checkpoints count only if a parent's checkpoint names its chain: a chain
  // made up in the store (or signed for a compromised worker under another name) vouches for
  // nothing.
  std::set<std::string> vouched;
  for (const auto& [writer, checkpoints] : writers) {
    if (writer.rfind("gateway-", 0) != 0) continue;
    vouched.insert(writer);
    for (const auto& [number, cp] : checkpoints)
      for (const auto* list : {&cp.started, &cp.ended, &cp.open})
        for (const auto& id : *list)
          if (id.rfind("worker-", 0) == 0) vouched.insert(id);
  }
  for (auto it = writers.begin(); it != writers.end();) {
    if (vouched.count(it->first)) {
      ++it;
      continue;
    }
    writer_problems[it->first].push_back(
        "its checkpoints are not believed: no checkpoint of a castgate parent process names it");
    it = writers.erase(it);
  }

  // Newest line per instance: what "recent" means for that instance's checkpoints; and the
  // instance must still have been writing when the store was read (--as-of, or now).
  std::map<std::string, int64_t> newest;
  for (const auto& [chain, meta] : meta_) {
    int64_t t = rfc3339_seconds(meta.newest);
    auto& n = newest[meta.instance];
    n = std::max(n, t);
  }
  const int64_t now = options_.now ? options_.now : static_cast<int64_t>(std::time(nullptr));
  auto instance_of = [&](const std::string& chain) {
    auto m = meta_.find(chain);
    return m == meta_.end() ? std::string() : m->second.instance;
  };
  // One interval, and time for a late watchdog pass, a slow signer and a shipper's reordering.
  auto slack = [](const Checkpoint& cp) { return cp.interval + 10; };
  auto recent = [&](const std::string& writer, const Checkpoint& cp) {
    int64_t instance_newest = newest[instance_of(writer)];
    return instance_newest - rfc3339_seconds(cp.time) <= slack(cp);
  };
  auto still_writing = [&](const std::string& writer, const Checkpoint& cp) {
    return now - newest[instance_of(writer)] <= slack(cp);
  };

  std::map<std::string, Named> named;
  for (const auto& [writer, checkpoints] : writers) {
    auto& problems = writer_problems[writer];
    uint64_t expect = 1;
    for (const auto& [number, cp] : checkpoints) {
      if (number > expect)
        problems.push_back(number == expect + 1
                               ? "checkpoint " + std::to_string(expect) + " is missing"
                               : "checkpoints " + std::to_string(expect) + ".." +
                                     std::to_string(number - 1) + " are missing");
      if (cp.parts_seen.size() < cp.parts)
        problems.push_back("parts of checkpoint " + std::to_string(number) + " are missing");
      else if (asciicast::checkpoint_digest({cp.started, cp.ended, {}, 0, 0}) != cp.digest)
        problems.push_back("checkpoint " + std::to_string(number) +
                           "'s lists do not match its digest");
      expect = number + 1;
      for (const auto* list : {&cp.started, &cp.ended, &cp.open})
        for (const auto& id : *list)
          if (!may_name(writer, id)) {
            problems.push_back("checkpoint " + std::to_string(number) + " names " + id +
                               ", which is not one of its chains");
            break;
          }
      for (const auto& id : cp.started)
        if (may_name(writer, id) && named[id].state != "ended")
          named[id] = {"started", writer, &cp};
      for (const auto& id : cp.ended)
        if (may_name(writer, id) && named[id].state != "ended") named[id] = {"ended", writer, &cp};
    }
    if (checkpoints.empty()) continue;
    const Checkpoint& latest = checkpoints.rbegin()->second;
    for (const auto& id : latest.open)
      if (may_name(writer, id) && named[id].state != "ended") named[id] = {"open", writer, &latest};
  }

  std::map<std::string, SessionVerdict*> by_session;
  for (auto& v : verdicts) by_session[v.session] = &v;
  for (const auto& [writer, problems] : writer_problems) {
    auto v = by_session.find(writer);
    if (v == by_session.end() || problems.empty()) continue;
    v->second->problems.insert(v->second->problems.end(), problems.begin(), problems.end());
    v->second->ok = false;
    v->second->lost = false;
  }
  // Named by a checkpoint, absent from the store: deleted whole (or not yet shipped).
  for (const auto& [id, n] : named) {
    if (by_session.count(id) || (!options_.session.empty() && id != options_.session)) continue;
    SessionVerdict v;
    v.session = id;
    v.problems.push_back("no event of it is in the store, but " +
                         describe(n.writer, *n.checkpoint) + " says it " +
                         (n.state == "open" ? "was open" : n.state) +
                         " (deleted from the store, or not yet shipped)");
    verdicts.push_back(std::move(v));
  }
  // A chain without its final event: open or truncated?
  for (auto& v : verdicts) {
    auto at = std::find(v.problems.begin(), v.problems.end(), kNoFinalEvent);
    if (at == v.problems.end()) continue;
    auto n = named.find(v.session);
    auto own = writers.find(v.session);
    const Checkpoint* own_latest = nullptr;
    bool self_recent = false;  // a process chain whose own newest checkpoint is recent
    if (own != writers.end() && !own->second.empty()) {
      own_latest = &own->second.rbegin()->second;
      self_recent = !own_latest->last && recent(v.session, *own_latest);
    }
    auto stopped = [&](const std::string& writer, const Checkpoint& cp) {
      return "no final event, and its instance's newest line in the store is older than " +
             std::to_string(slack(cp)) + "s (" + describe(writer, cp) +
             " names it open): the whole gateway stopped without closing it, or the store was cut";
    };
    if (n != named.end() && n->second.state == "ended") {
      *at = "its final event is missing, but " + describe(n->second.writer, *n->second.checkpoint) +
            " says it ended: the record was truncated";
    } else if (n != named.end() && n->second.state == "open") {
      const auto& writer = n->second.writer;
      const Checkpoint& cp = *n->second.checkpoint;
      if (cp.last) {
        *at = "no final event, and the process that wrote it ended with it open (" +
              describe(writer, cp) + "): truncated";
      } else if (!recent(writer, cp) || (own_latest && !self_recent)) {
        *at = "no final event; the newest checkpoint that names it open is " +
              describe(writer, cp) +
              ", but the store holds later lines of its instance: its end and the checkpoints "
              "after that one are missing";
      } else if (!still_writing(writer, cp)) {
        *at = stopped(writer, cp);
      } else {
        v.open = true;
        v.open_note = "still open at " + describe(writer, cp) + ", the newest for its instance";
        v.problems.erase(at);
      }
    } else if (own_latest && self_recent && v.session.rfind("gateway-", 0) == 0) {
      if (!still_writing(v.session, *own_latest)) {
        *at = stopped(v.session, *own_latest);
      } else {
        v.open = true;
        v.open_note = "a castgate parent process still running: its newest checkpoint is " +
                      describe(v.session, *own_latest);
        v.problems.erase(at);
      }
    } else if (own_latest) {
      *at = "no final event, and its newest checkpoint (" + describe(v.session, *own_latest) +
            ") is older than the store's later lines of its instance, or no parent's checkpoint "
            "names it open: truncated";
    } else if (!writers.empty()) {
      *at = std::string(kNoFinalEvent) +
            "; no checkpoint names it (it may have started after the newest one)";
    }
    v.ok = false;
    if (v.open && !v.problems.empty()) {
      v.open = false;  // open, but something else is wrong with it
      v.problems.push_back(v.open_note);
    }
  }
  std::sort(verdicts.begin(), verdicts.end(),
            [](const SessionVerdict& a, const SessionVerdict& b) { return a.session < b.session; });
}

Verifier::LostClaim Verifier::lost_claim(const Item& final) {
  LostClaim claim;
  json last = json::parse(final.canonical, nullptr, false);
  if (!last.is_object() || !last["castgate"].is_object() || !last["castgate"].contains("lost"))
    return claim;
  claim.lost = true;  // whatever its form: the gateway says the session is incomplete
  const json& lost = last["castgate"]["lost"];
  if (lost.is_object()) claim.cut = lost.value("cut", json(false)) == json(true);
  if (last["event"].is_object() && last["event"].contains("reason") &&
      last["event"]["reason"].is_string())
    claim.reason = last["event"]["reason"].get<std::string>();
  if (claim.reason.empty()) {
    claim.reason = "the castgate worker process serving this session ended unexpectedly";
    if (lost.is_object() && lost.contains("signal") && lost["signal"].is_number_integer())
      claim.reason += " (killed by signal " + lost["signal"].dump() + ")";
    else if (lost.is_object() && lost.contains("exit_status") &&
             lost["exit_status"].is_number_integer())
      claim.reason += " (exit status " + lost["exit_status"].dump() + ")";
  }
  return claim;
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

int verify_exit_status(const std::vector<SessionVerdict>& verdicts, bool foreign_lines) {
  if (verdicts.empty() || foreign_lines) return kVerifyExitFailed;
  bool lost = false, open = false;
  for (const auto& v : verdicts) {
    if (v.lost && !v.ok) {
      lost = true;
    } else if (v.open) {
      open = true;
    } else if (!v.ok) {
      return kVerifyExitFailed;
    }
  }
  return open ? kVerifyExitOpen : lost ? kVerifyExitLost : kVerifyExitOk;
}

std::string_view verdict_word(const SessionVerdict& v) {
  if (v.ok) return "OK";
  if (v.open) return "OPEN";
  return v.lost ? "LOST" : "FAILED";
}

void write_findings(std::ostream& out, const SessionVerdict& v, std::string_view indent) {
  if (v.open) out << indent << terminal_safe(v.open_note) << '\n';
  if (v.lost) {
    out << indent << "lost by the gateway: " << terminal_safe(v.lost_reason) << '\n';
    if (!v.lost_cut_line.empty())
      out << indent << terminal_safe(v.lost_cut_line)
          << " is the line it was writing, cut short (as the signed final event says)\n";
  }
  for (const auto& p : v.problems) out << indent << terminal_safe(p) << '\n';
}

int write_verify_report(std::ostream& out, const std::vector<SessionVerdict>& verdicts,
                        const std::vector<std::string>& foreign_lines, bool as_json) {
  uint64_t ok = 0, lost = 0, open = 0, failed = 0;
  for (const auto& v : verdicts) {
    ++(v.ok ? ok : v.lost ? lost : v.open ? open : failed);
    if (as_json) {
      json j = {{"session", v.session},  {"ok", v.ok},
                {"lost", v.lost},        {"events", v.events},
                {"signed", v.signed_ok}, {"duplicates", v.exact_duplicates},
                {"problems", v.problems}};
      if (v.lost) j["lost_reason"] = v.lost_reason;
      if (v.open) j["open"] = v.open_note;
      if (!v.lost_cut_line.empty()) j["lost_cut_line"] = v.lost_cut_line;
      out << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      continue;
    }
    std::string word(verdict_word(v));
    word.resize(7, ' ');
    out << word << terminal_safe(v.session) << "  " << v.events << " events"
        << (v.exact_duplicates ? ", " + std::to_string(v.exact_duplicates) + " duplicates" : "")
        << (v.signed_ok ? ", signature valid" : "") << '\n';
    write_findings(out, v, "       - ");
  }
  for (const auto& f : foreign_lines) out << "FAILED " << terminal_safe(f) << '\n';
  if (!as_json && !verdicts.empty())
    out << verdicts.size() << (verdicts.size() == 1 ? " session: " : " sessions: ") << ok << " OK, "
        << lost << " LOST, " << (open ? std::to_string(open) + " OPEN, " : "") << failed
        << " FAILED" << (foreign_lines.empty() ? "" : "; and lines that are not castgate events")
        << '\n';
  return verify_exit_status(verdicts, !foreign_lines.empty());
}

}  // namespace castgate::player
