#include "asciicast/session_log.h"

#include "asciicast/chain.h"
#include "asciicast/json_text.h"
#include "asciicast/utf8.h"
#include "common/encoding.h"
#include "common/log.h"

namespace castgate::asciicast {

using nlohmann::json;

SessionLog::SessionLog(SessionLogOptions options, std::string session_id, Endpoint source,
                       LineSink& sink, std::shared_ptr<Backlog> backlog, const Clock& clock)
    : options_(std::move(options)),
      session_id_(std::move(session_id)),
      sink_(sink),
      backlog_(std::move(backlog)),
      clock_(clock),
      prev_hash_(kGenesisHash) {
  common_["castgate"]["instance"] = options_.instance;
  common_["castgate"]["session"] = session_id_;
  if (!source.address.empty()) {  // gateway-level events have no peer
    common_["source"]["ip"] = source.address;
    common_["source"]["port"] = source.port;
  }
  rebuild_fragments();
}

void SessionLog::set_identity(const Identity& identity) {
  json user;
  user["id"] = identity.subject;
  if (!identity.name.empty()) user["name"] = identity.name;
  if (!identity.email.empty()) user["email"] = identity.email;
  json id;
  id["kind"] = std::string(to_string(identity.kind));
  id["issuer"] = identity.issuer;
  id["auth_method"] = identity.auth_method;
  // A very long group list (an IdP's full directory) would not fit in every line: it is written
  // once, in identity.groups events, and each line keeps only the count.
  bool groups_inline = true;
  if (!identity.groups.empty()) {
    json names = identity.groups;
    if (names.dump().size() <= options_.max_line / 4) {
      user["group"]["name"] = names;
    } else {
      groups_inline = false;
      id["group_count"] = identity.groups.size();
    }
  }
  if (common_.contains("user") && common_["user"].contains("target"))
    user["target"] = common_["user"]["target"];
  common_["user"] = user;
  common_["castgate"]["identity"] = id;
  rebuild_fragments();
  if (!groups_inline) {
    std::vector<std::string> chunk;
    size_t size = 0;
    auto flush = [&] {
      emit(EventKind{"identity.groups", {"iam"}, {"info"}, "", "groups of the signed-in identity"},
           json{{"castgate", {{"groups", chunk}}}});
      chunk.clear();
      size = 0;
    };
    for (const auto& g : identity.groups) {
      if (size + g.size() + 4 > options_.max_line / 2 && !chunk.empty()) flush();
      chunk.push_back(g.substr(0, options_.max_line / 2));
      size += g.size() + 4;
    }
    if (!chunk.empty()) flush();
  }
}

void SessionLog::set_target(const std::string& target_name, const Endpoint& target,
                            const std::string& login) {
  common_["destination"]["address"] = target_name;
  if (!target.address.empty() && target.address != target_name)
    common_["destination"]["ip"] = target.address;
  common_["destination"]["port"] = target.port;
  common_["user"]["target"]["name"] = login;
  rebuild_fragments();
}

void SessionLog::rebuild_fragments() {
  frag_castgate_mid_.clear();
  frag_castgate_tail_.clear();
  frag_before_event_.clear();
  frag_after_event_.clear();
  for (auto& [key, value] : common_["castgate"].items()) {
    std::string member;
    append_json_string(member, key);
    member += ':';
    member += value.dump();
    if (key > "channel" && key < "prev") {
      frag_castgate_mid_ += member;
      frag_castgate_mid_ += ',';
    } else if (key > "seq") {
      if (!frag_castgate_tail_.empty()) frag_castgate_tail_ += ',';
      frag_castgate_tail_ += member;
    } else {
      log::error("session log: unexpected castgate member " + key);
    }
  }
  for (auto& [key, value] : common_.items()) {
    if (key == "castgate") continue;
    std::string member;
    append_json_string(member, key);
    member += ':';
    member += value.dump();
    if (key < "event") {
      frag_before_event_ += member;
      frag_before_event_ += ',';
    } else {
      frag_after_event_ += ',';
      frag_after_event_ += member;
    }
  }
}

namespace {
// Event-specific members join the common ones; objects present in both ("castgate", "event")
// are merged one level deep.
void merge_fields(json& j, const json& fields) {
  for (auto& [key, value] : fields.items()) {
    if (value.is_object() && j.contains(key) && j[key].is_object()) {
      for (auto& [k2, v2] : value.items()) j[key][k2] = v2;
    } else {
      j[key] = value;
    }
  }
}
}  // namespace

json SessionLog::base_event(const EventKind& kind, std::optional<int> channel) {
  json j = common_;
  j["@timestamp"] = rfc3339_micros(clock_.now());
  json ev;
  ev["action"] = kind.action;
  ev["kind"] = "event";
  ev["category"] = kind.category;
  ev["type"] = kind.type;
  if (!kind.outcome.empty()) ev["outcome"] = kind.outcome;
  if (!kind.reason.empty()) ev["reason"] = kind.reason;
  j["event"] = std::move(ev);
  if (channel) j["castgate"]["channel"] = *channel;
  return j;
}

void SessionLog::submit(std::string line) {
  prev_hash_ = chain_hash(line);
  ++seq_;
  sink_.submit(std::move(line), backlog_);
}

void SessionLog::emit(const EventKind& kind, json fields, std::optional<int> channel,
                      const char* split_pointer) {
  if (ended_) return;
  json j = base_event(kind, channel);
  merge_fields(j, fields);
  j["castgate"]["seq"] = seq_;
  j["castgate"]["prev"] = prev_hash_;
  std::string line = j.dump();
  if (line.size() <= options_.max_line || !split_pointer) {
    if (line.size() > options_.max_line)
      log::warn("event " + kind.action + " is longer than the line limit");
    submit(std::move(line));
    return;
  }
  // Too long: cut the designated string into parts that each fit.
  json::json_pointer ptr(split_pointer);
  std::string text = j.at(ptr).get<std::string>();
  size_t overhead = line.size() - json_string_size(text) + 64;  // room for castgate.part
  size_t budget = options_.max_line > overhead + 16 ? options_.max_line - overhead : 16;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    std::string_view rest(text.data() + pos, text.size() - pos);
    size_t take = 0, escaped = 0;
    while (take < rest.size()) {
      size_t esc = json_string_size(rest.substr(take, 1)) - 2;
      if (escaped + esc > budget) break;
      escaped += esc;
      ++take;
    }
    take = utf8_prefix_at_most(rest, take);
    if (take == 0) take = std::min<size_t>(rest.size(), 4);
    parts.emplace_back(rest.substr(0, take));
    pos += take;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    j[ptr] = parts[i];
    j["castgate"]["part"] = {{"index", i}, {"count", parts.size()}};
    j["castgate"]["seq"] = seq_;
    j["castgate"]["prev"] = prev_hash_;
    submit(j.dump());
  }
}

size_t SessionLog::emit_asciicast(int channel, std::string_view action, int64_t t_micros, char code,
                                  std::string_view data_utf8) {
  if (ended_) return data_utf8.size();
  // Everything after the data first, so that the data can take exactly the room that is left.
  suffix_.assign(R"(]},"castgate":{"channel":)");
  append_json_uint(suffix_, static_cast<uint64_t>(channel));
  suffix_ += ',';
  suffix_ += frag_castgate_mid_;
  suffix_ += R"("prev":")";
  suffix_ += prev_hash_;
  suffix_ += R"(","seq":)";
  append_json_uint(suffix_, seq_);
  if (!frag_castgate_tail_.empty()) {
    suffix_ += ',';
    suffix_ += frag_castgate_tail_;
  }
  suffix_ += "},";
  suffix_ += frag_before_event_;
  suffix_ += R"("event":{"action":)";
  append_json_string(suffix_, action);
  suffix_ += R"(,"category":["session"],"kind":"event","type":["info"]})";
  suffix_ += frag_after_event_;
  suffix_ += '}';

  std::string line;
  line.reserve(std::min(options_.max_line, 128 + suffix_.size() + data_utf8.size() * 6));
  line += R"({"@timestamp":")";
  append_rfc3339_micros(line, clock_.now());
  line += R"(","asciicast":{"event":[)";
  append_json_seconds(line, t_micros);
  line += ",\"";
  line += code;
  line += "\",";
  size_t used = line.size() + suffix_.size() + 2;
  size_t budget = options_.max_line > used ? options_.max_line - used : 0;
  size_t taken = append_json_string_bounded(line, data_utf8, budget);
  line += suffix_;
  submit(std::move(line));
  return taken;
}

void SessionLog::end(const EventKind& kind, json fields) {
  if (ended_) return;
  json j = base_event(kind, std::nullopt);
  merge_fields(j, fields);
  j["castgate"]["seq"] = seq_;
  j["castgate"]["prev"] = prev_hash_;
  j["castgate"]["final"] = true;
  if (options_.signing_key) {
    j["castgate"]["signer"] = recording_key_id(options_.signing_key->public_key_raw());
    std::string unsigned_line = j.dump();
    j["castgate"]["sig"] =
        base64_encode(options_.signing_key->sign(signature_payload(unsigned_line)));
  }
  submit(j.dump());
  ended_ = true;
}

}  // namespace castgate::asciicast
