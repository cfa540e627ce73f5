#include "player/commands.h"

#include <simdjson.h>

#include <algorithm>
#include <future>
#include <iterator>

namespace castgate::player {
namespace {

using simdjson::dom::element;

std::string text_at(element e, const char* path) {
  std::string_view v;
  if (e.at_pointer(path).get_string().get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

}  // namespace

void CommandIndex::add_text(std::string_view text) {
  // A large piece (a plain file's mapping) is catalogued on another core meanwhile: the catalog
  // and the rows below touch nothing in common.
  std::future<void> catalogued;
  if (text.size() >= kParallelScanFrom)
    catalogued = std::async(std::launch::async, [&] { catalog_.add_text(text); });
  else
    catalog_.add_text(text);
  // `"command` is in every command event (the action, process.command_line) raw or escaped;
  // `"alert` in every alert; the rest of those lines are parsed and dropped by their action.
  for (std::string_view needle : {std::string_view("\"command"), std::string_view("\"alert"),
                                  std::string_view("channel.end")})
    for_each_line(text, needle, [&](std::string_view line, size_t) { add_line(line); });
  if (catalogued.valid()) catalogued.get();
}

void CommandIndex::add_line(std::string_view line) {
  StoredEvent e;
  thread_local simdjson::dom::parser parser;
  element root;
  if (!unwrap_line(line, e) ||
      parser.parse(e.canonical.data(), e.canonical.size()).get(root) != simdjson::SUCCESS) {
    ++unreadable_;  // it names a command, an alert or a channel end, but cannot be read
    return;
  }
  std::string action = text_at(root, "/event/action");
  std::string session = text_at(root, "/castgate/session");
  int64_t channel = -1;
  uint64_t seq = 0;
  if (session.empty() || root.at_pointer("/castgate/seq").get_uint64().get(seq)) return;
  if (root.at_pointer("/castgate/channel").get_int64().get(channel)) channel = -1;
  if (action == "command") {
    CommandRow r;
    r.time = text_at(root, "/@timestamp");
    r.session = session;
    r.channel = static_cast<int>(channel);
    r.seq = seq;
    r.command = text_at(root, "/process/command_line");
    r.via = text_at(root, "/castgate/command_source");
    commands_.push_back(std::move(r));
  } else if (action == "alert") {
    alerts_.push_back(Alert{session, static_cast<int>(channel), seq, text_at(root, "/rule/name")});
  } else if (action == "channel.end") {
    int64_t code = 0;
    if (channel >= 0 &&
        root.at_pointer("/process/exit_code").get_int64().get(code) == simdjson::SUCCESS)
      exit_codes_[{session, static_cast<int>(channel)}] = code;
  }
}

std::vector<CommandRow> CommandIndex::rows(const CommandFilter& f) const {
  CatalogFilter cf;
  cf.user = f.user;
  cf.target = f.target;
  cf.include_denied = true;
  std::map<std::string, SessionSummary> sessions;
  for (auto& s : catalog_.sessions(cf)) sessions.emplace(s.session, s);
  // A log shipper may deliver a line twice: one row per (session, seq).
  std::vector<const CommandRow*> unique;
  for (const auto& c : commands_) unique.push_back(&c);
  std::sort(unique.begin(), unique.end(), [](const CommandRow* a, const CommandRow* b) {
    return a->session != b->session ? a->session < b->session : a->seq < b->seq;
  });
  unique.erase(std::unique(unique.begin(), unique.end(),
                           [](const CommandRow* a, const CommandRow* b) {
                             return a->session == b->session && a->seq == b->seq;
                           }),
               unique.end());
  // Alerts first, over every command of the record: an alert belongs to the last command of its
  // channel before it, whatever the filters leave.
  std::vector<CommandRow> all;
  all.reserve(unique.size());
  for (const CommandRow* c : unique) all.push_back(*c);
  std::map<std::pair<std::string, int>, std::vector<size_t>> by_channel;  // indexes, seq order
  for (size_t i = 0; i < all.size(); ++i) by_channel[{all[i].session, all[i].channel}].push_back(i);
  for (const auto& a : alerts_) {
    auto it = by_channel.find({a.session, a.channel});
    if (it == by_channel.end()) continue;
    const auto& idx = it->second;
    auto after = std::upper_bound(idx.begin(), idx.end(), a.seq,
                                  [&](uint64_t seq, size_t i) { return seq <= all[i].seq; });
    if (after == idx.begin()) continue;
    auto& alerts = all[*std::prev(after)].alerts;
    if (std::find(alerts.begin(), alerts.end(), a.rule) == alerts.end()) alerts.push_back(a.rule);
  }
  std::vector<CommandRow> out;
  for (auto& c : all) {
    auto s = sessions.find(c.session);
    if (s == sessions.end()) continue;  // filtered out by user or target, or no session start
    if (!f.since.empty() && c.time < f.since) continue;
    if (!f.until.empty() && c.time > f.until) continue;
    if (!f.grep.empty() && c.command.find(f.grep) == std::string::npos) continue;
    c.who = s->second;
    if (c.via == "exec") {
      auto code = exit_codes_.find({c.session, c.channel});
      if (code != exit_codes_.end()) c.exit_code = code->second;
    }
    out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const CommandRow& a, const CommandRow& b) { return a.time < b.time; });
  return out;
}

}  // namespace castgate::player
