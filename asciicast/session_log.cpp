#include "asciicast/session_log.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "asciicast/chain.h"
#include "asciicast/event_catalog.h"
#include "asciicast/json_text.h"
#include "asciicast/untrusted_text.h"
#include "asciicast/utf8.h"
#include "common/encoding.h"
#include "common/log.h"

namespace castgate::asciicast {

using nlohmann::json;

std::string event_id(std::string_view chain, uint64_t seq) {
  std::string id(chain);
  id += ':';
  id += std::to_string(seq);
  return id;
}

SessionLog::SessionLog(SessionLogOptions options, std::string session_id, Endpoint source,
                       LineSink& sink, std::shared_ptr<Backlog> backlog, const Clock& clock)
    : options_(std::move(options)),
      session_id_(std::move(session_id)),
      sink_(sink),
      backlog_(std::move(backlog)),
      clock_(clock),
      started_(clock.steady_now()),
      prev_hash_(kGenesisHash) {
  common_["castgate"]["instance"] = options_.instance;
  common_["castgate"]["session"] = session_id_;
  common_["ecs"]["version"] = kEcsVersion;
  // castgate itself, as ECS describes the device that saw the event.
  common_["observer"] = {{"hostname", options_.instance},
                         {"product", "castgate"},
                         {"type", "proxy"},
                         {"vendor", "castgate"}};
  if (!source.address.empty()) {  // gateway-level events have no peer
    common_["source"]["ip"] = source.address;
    common_["source"]["port"] = source.port;
  }
  // The constant head of event.id, escaped once: an asciicast line appends only its number.
  frag_event_id_ = R"("id":)";
  append_json_string(frag_event_id_, event_id(session_id_, 0));
  frag_event_id_.resize(frag_event_id_.size() - 2);  // without `0"`
  rebuild_fragments();
}

namespace {
// Members repeated on every line (identity, target, login) are kept short: a user name or key id
// of megabytes would otherwise crowd out what the line is for.
// Entra ID names groups by object id: 8-4-4-4-12 hex digits (ECS user.group.id, not .name).
bool is_guid(std::string_view g) {
  if (g.size() != 36) return false;
  for (size_t i = 0; i < g.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? g[i] != '-' : !std::isxdigit(static_cast<unsigned char>(g[i]))) return false;
  }
  return true;
}

std::string common_value(std::string_view raw, size_t max_line) {
  std::string v = valid_utf8(raw);
  size_t cap = std::clamp<size_t>(max_line / 64, 16, 256);
  return v.size() <= cap ? v : truncated_with_digest(v, cap);
}
}  // namespace

void SessionLog::set_identity(const Identity& identity) {
  const size_t max = options_.max_line;
  json user;
  user["id"] = common_value(identity.subject, max);
  if (!identity.name.empty()) user["name"] = common_value(identity.name, max);
  if (!identity.email.empty()) user["email"] = common_value(identity.email, max);
  json id;
  id["kind"] = std::string(to_string(identity.kind));
  if (!identity.email.empty()) id["email_verified"] = identity.email_verified;
  id["issuer"] = common_value(identity.issuer, max);
  id["auth_method"] = common_value(identity.auth_method, max);
  // Whether an identity provider's sign-in used several factors (policy "mfa" rules need it).
  if (identity.auth_method == "oidc-device") id["mfa"] = identity.mfa;
  // A long group list (an IdP's full directory) would not fit in every line: it is written
  // once, in identity.groups events, and each line keeps only the count.
  bool groups_inline = true;
  if (!identity.groups.empty()) {
    json names = json::array(), ids = json::array();
    for (const auto& g : identity.groups)
      (is_guid(g) ? ids : names).push_back(common_value(g, max));
    if (canonical_dump(names).size() + canonical_dump(ids).size() <= max / 8) {
      if (!names.empty()) user["group"]["name"] = std::move(names);
      if (!ids.empty()) user["group"]["id"] = std::move(ids);
    } else {
      groups_inline = false;
      id["group_count"] = identity.groups.size();
    }
  }
  common_["user"] = user;
  common_["castgate"]["identity"] = id;
  rebuild_related();
  if (!groups_inline) {
    std::vector<std::string> chunk;
    size_t size = 0;
    auto flush = [&] {
      // The same list as user.group.name/id, so that a search by group finds these events too.
      json names = json::array(), ids = json::array();
      for (const auto& g : chunk) (is_guid(g) ? ids : names).push_back(g);
      json fields{{"castgate", {{"groups", chunk}}}};
      if (!names.empty()) fields["user"]["group"]["name"] = std::move(names);
      if (!ids.empty()) fields["user"]["group"]["id"] = std::move(ids);
      emit(EventKind{"identity.groups", "", "groups of the signed-in identity"}, std::move(fields));
      chunk.clear();
      size = 0;
    };
    for (const auto& raw : identity.groups) {
      std::string g = valid_utf8(raw);
      if (g.size() > max / 4) g = truncated_with_digest(g, max / 4);
      if (size + g.size() + 8 > max / 2 && !chunk.empty()) flush();
      size += g.size() + 8;
      chunk.push_back(std::move(g));
    }
    if (!chunk.empty()) flush();
  }
}

namespace {
bool is_ip_address(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}
}  // namespace

void SessionLog::set_target(const std::string& target_name, const Endpoint& target,
                            const std::string& login) {
  const size_t max = options_.max_line;
  common_["destination"]["address"] = common_value(target_name, max);
  // The server: its address (ECS destination.ip holds IP addresses only) or its DNS name.
  if (!target.address.empty() && is_ip_address(target.address))
    common_["destination"]["ip"] = target.address;
  else if (!target.address.empty())
    common_["destination"]["domain"] = common_value(target.address, max);
  common_["destination"]["port"] = target.port;
  // The login on the server (ECS: remote logons via ssh name it destination.user.name).
  common_["destination"]["user"]["name"] = common_value(login, max);
  rebuild_related();
}

void SessionLog::add_byte_counts(json& fields, uint64_t to_target, uint64_t to_user) const {
  fields["castgate"]["bytes"] = {{"to_user", to_user}, {"to_target", to_target}};
  if (common_.contains("source")) fields["source"]["bytes"] = to_target;
  if (common_.contains("destination")) fields["destination"]["bytes"] = to_user;
}

void SessionLog::rebuild_related() {
  json users = json::array();
  if (common_.contains("user") && common_["user"].contains("name"))
    users.push_back(common_["user"]["name"]);
  if (common_.contains("destination") && common_["destination"].contains("user") &&
      (users.empty() || users[0] != common_["destination"]["user"]["name"]))
    users.push_back(common_["destination"]["user"]["name"]);
  if (users.empty())
    common_.erase("related");
  else
    common_["related"]["user"] = std::move(users);
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
    member += canonical_dump(value);
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
    member += canonical_dump(value);
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
  ev["dataset"] = kEventDataset;
  ev["module"] = kEventModule;
  const EventClass* c = event_class(kind.action);
  if (!c) log::error("event " + kind.action + " is not in castgate's event catalog");
  ev["kind"] = c ? c->kind : "event";
  ev["category"] = json::array();
  for (auto v : c ? c->category : std::vector<std::string_view>{"process"})
    ev["category"].push_back(v);
  if (!kind.type.empty()) {
    ev["type"] = kind.type;
  } else {
    ev["type"] = json::array();
    for (auto v : c ? c->type : std::vector<std::string_view>{"info"}) ev["type"].push_back(v);
  }
  if (!kind.outcome.empty()) ev["outcome"] = kind.outcome;
  if (!kind.reason.empty()) ev["reason"] = valid_utf8(kind.reason);
  j["event"] = std::move(ev);
  if (channel) j["castgate"]["channel"] = *channel;
  return j;
}

void SessionLog::submit(std::string_view line) {
  if (seq_ == 0 && options_.ledger) options_.ledger->started(session_id_);
  chain_hash(line, prev_hash_);  // into the string it replaces: no allocation per line
  ChainPoint point{seq_, prev_hash_, ended_};
  ++seq_;
  sink_.submit(line, point, backlog_);
}

namespace {

constexpr size_t kMinKept = 64;  // a cut value keeps at least this much of its beginning

// RFC 6901: "~" and "/" in a member name are written "~0" and "~1".
std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

// String members of `j` longer than kMinKept, as (escaped size, JSON pointer), longest first.
void long_strings(const json& j, const std::string& path,
                  std::vector<std::pair<size_t, std::string>>& out) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s.size() > kMinKept) out.emplace_back(json_string_size(s), path);
  } else if (j.is_object()) {
    for (auto& [k, v] : j.items()) long_strings(v, path + "/" + pointer_token(k), out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) long_strings(j[i], path + "/" + std::to_string(i), out);
  }
}

bool is_chain_member(const std::string& pointer) {
  return pointer == "/castgate/prev" || pointer == "/castgate/session" ||
         pointer == "/castgate/sig" || pointer == "/castgate/signer" || pointer == "/event/id";
}

}  // namespace

bool SessionLog::fit(json& j, size_t limit, const std::string& keep) {
  std::vector<std::pair<size_t, std::string>> strings;
  long_strings(j, "", strings);
  std::sort(strings.begin(), strings.end(), std::greater<>());
  std::string line = canonical_dump(j);
  for (const auto& [escaped, pointer] : strings) {
    if (line.size() <= limit) return true;
    if (pointer == keep || is_chain_member(pointer)) continue;
    json::json_pointer ptr(pointer);
    std::string value = j.at(ptr).get<std::string>();
    size_t excess = line.size() - limit;
    size_t marker = truncation_marker_size(value.size()) + 48;  // and its pointer in "truncated"
    size_t budget = escaped > excess + marker + kMinKept ? escaped - excess - marker : kMinKept;
    j[ptr] = truncated_with_digest(value, json_escaped_prefix(value, budget));
    j["castgate"]["truncated"].push_back(pointer);
    line = canonical_dump(j);
  }
  return line.size() <= limit;
}

void SessionLog::emit(const EventKind& kind, json fields, std::optional<int> channel,
                      const char* split_pointer) {
  if (ended_) return;
  json j = next_event(kind, std::move(fields), channel);
  std::string line = canonical_dump(j);
  if (line.size() <= options_.max_line) return submit(line);
  json::json_pointer ptr(split_pointer ? split_pointer : "");
  if (split_pointer && j.contains(ptr) && j.at(ptr).is_string()) {
    // Too long, and the event names the string that may be cut into parts (a command): the rest
    // must fit with room for a part, then the string goes out in as many events as it takes.
    std::string text = j.at(ptr).get<std::string>();
    j[ptr] = "";
    constexpr size_t kPartRoom = 512;
    if (fit(j, options_.max_line - std::min(options_.max_line / 2, kPartRoom), split_pointer))
      return emit_parts(j, ptr, text);
    j[ptr] = std::move(text);
  }
  if (!fit(j, options_.max_line, "")) {
    // Only castgate's own members are left, and still too long: keep the event's place in the
    // chain and say that its content was dropped.
    json minimal = base_event(kind, channel);
    place_in_chain(minimal);
    minimal["castgate"]["truncated"] = json::array({""});
    log::error("event " + kind.action + " could not be fitted to the line limit");
    j = std::move(minimal);
  }
  submit(canonical_dump(j));
}

void SessionLog::emit_parts(json& j, const json::json_pointer& ptr, const std::string& text) {
  std::string line = canonical_dump(j);
  size_t overhead = line.size() + 64;  // room for castgate.part
  size_t budget = options_.max_line > overhead + 16 ? options_.max_line - overhead : 16;
  std::vector<std::string_view> parts;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t take = json_escaped_prefix(rest, budget);
    if (take == 0) take = std::max<size_t>(1, utf8_prefix_at_most(rest, 4));
    parts.push_back(rest.substr(0, take));
    rest.remove_prefix(take);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    j[ptr] = std::string(parts[i]);
    j["castgate"]["part"] = {{"index", i}, {"count", parts.size()}};
    place_in_chain(j);
    submit(canonical_dump(j));
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
  suffix_ += R"(,"category":["session"],"dataset":")";
  suffix_ += kEventDataset;
  suffix_ += R"(",)";
  suffix_ += frag_event_id_;
  append_json_uint(suffix_, seq_);
  suffix_ += R"(","kind":"event","module":")";
  suffix_ += kEventModule;
  suffix_ += R"(","sequence":)";
  append_json_uint(suffix_, seq_);
  suffix_ += R"(,"type":["info"]})";
  // With searchable text, the same text again as ECS "message", right after "event" in key
  // order (no common member sorts between them).
  constexpr std::string_view kMessage = R"(,"message":)";
  const size_t tail = frag_after_event_.size() + 1;

  std::string& line = line_;  // its room stays from line to line
  line.clear();
  line.reserve(std::min(options_.max_line, 128 + suffix_.size() + tail + data_utf8.size() * 12));
  line += R"({"@timestamp":")";
  append_rfc3339_micros(line, clock_.now());
  line += R"(","asciicast":{"event":[)";
  append_json_seconds(line, t_micros);
  line += ",\"";
  line += code;
  line += "\",";
  size_t used = line.size() + suffix_.size() + tail + 2;
  if (options_.searchable_text) used += kMessage.size() + 2;
  size_t budget = options_.max_line > used ? options_.max_line - used : 0;
  if (options_.searchable_text) budget /= 2;
  const size_t start = line.size();
  size_t taken = append_json_string_bounded(line, data_utf8, budget);
  const size_t length = line.size() - start;
  line += suffix_;
  if (options_.searchable_text) {
    line += kMessage;
    line.append(line, start, length);
  }
  line += frag_after_event_;
  line += '}';
  submit(line);
  return taken;
}

std::string SessionLog::signed_line(json& j) {
  if (!options_.signing_key) {
    fit(j, options_.max_line, "");
    return canonical_dump(j);
  }
  j["castgate"]["signer"] = recording_key_id(options_.signing_key->public_key_raw());
  // Room for the signature (88 base64 characters) and its member name.
  constexpr size_t kSignatureRoom = 112;
  fit(j, options_.max_line - kSignatureRoom, "");
  std::string unsigned_line = canonical_dump(j);
  std::string sig = options_.signing_key->sign_line(unsigned_line);
  if (sig.empty()) return unsigned_line;
  j["castgate"]["sig"] = base64_encode(sig);
  return canonical_dump(j);
}

void SessionLog::place_in_chain(json& j) const {
  j["castgate"]["seq"] = seq_;
  j["castgate"]["prev"] = prev_hash_;
  j["event"]["sequence"] = seq_;
  j["event"]["id"] = event_id(session_id_, seq_);
}

namespace {
// ECS names an endpoint by its address: a byte count for a source or destination the line does
// not name (a session refused before it was routed has no destination) would be a member no
// index template or schema accepts. A bug in the caller: logged, and the counts stay in
// castgate.bytes.
void drop_unnamed_endpoints(json& j, const std::string& action) {
  for (auto [member, name] : {std::pair{"source", "ip"}, std::pair{"destination", "address"}}) {
    auto it = j.find(member);
    if (it == j.end() || (it->is_object() && it->contains(name))) continue;
    log::error("event " + action + ": " + member + " without " + name + " dropped");
    j.erase(it);
  }
}
}  // namespace

void SessionLog::observe(const EventKind& kind, const json& fields) {
  if (!options_.observer) return;
  options_.observer->observe(
      kind, fields,
      std::chrono::duration_cast<std::chrono::microseconds>(clock_.steady_now() - started_));
}

json SessionLog::next_event(const EventKind& kind, json fields, std::optional<int> channel) {
  observe(kind, fields);
  make_strings_valid(fields);
  json j = base_event(kind, channel);
  merge_fields(j, fields);
  drop_unnamed_endpoints(j, kind.action);
  place_in_chain(j);
  return j;
}

void SessionLog::emit_signed(const EventKind& kind, json fields) {
  if (ended_) return;
  json j = next_event(kind, std::move(fields), std::nullopt);
  submit(signed_line(j));
}

void SessionLog::end(const EventKind& kind, json fields) {
  if (ended_) return;
  json j = next_event(kind, std::move(fields), std::nullopt);
  j["castgate"]["final"] = true;
  std::string line = signed_line(j);
  ended_ = true;  // before submit: the line is marked final on its way to the sink
  submit(line);
  if (options_.ledger) options_.ledger->ended(session_id_);
}

void SessionLog::resume(uint64_t next_seq, std::string prev_hash) {
  seq_ = next_seq;
  prev_hash_ = std::move(prev_hash);
}

}  // namespace castgate::asciicast
