// castgate's events against the Elastic Common Schema, version 9.4.0: the facts below are taken
// from the elastic/ecs repository at tag v9.4.0 (schemas/event.yml: allowed event.kind and
// event.category values and each category's expected event.type values; the field sets' yml files
// for field types).
#include "asciicast/event_catalog.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "asciicast/channel_kind.h"
#include "asciicast/channel_recording.h"
#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "player/log_reader.h"
#include "tests/asciicast/memory_sink.h"

using namespace castgate;
using namespace castgate::asciicast;
using nlohmann::json;

namespace {

const std::set<std::string_view> kEcsKinds = {"alert",  "asset",          "enrichment", "event",
                                              "metric", "pipeline_error", "signal",     "state"};
// event.category -> expected event.type (ECS 9.4.0).
const std::map<std::string_view, std::set<std::string_view>> kExpectedTypes = {
    {"api",
     {"access", "admin", "allowed", "change", "creation", "deletion", "denied", "end", "info",
      "start", "user"}},
    {"authentication", {"start", "end", "info"}},
    {"configuration", {"access", "change", "creation", "deletion", "info"}},
    {"database", {"access", "change", "info", "error"}},
    {"driver", {"change", "end", "info", "start"}},
    {"email", {"info"}},
    {"file", {"access", "change", "creation", "deletion", "info"}},
    {"host", {"access", "change", "end", "info", "start"}},
    {"iam", {"admin", "change", "creation", "deletion", "group", "info", "user"}},
    {"intrusion_detection", {"allowed", "denied", "info"}},
    {"library", {"start"}},
    {"malware", {"info"}},
    {"network", {"access", "allowed", "connection", "denied", "end", "info", "protocol", "start"}},
    {"package", {"access", "change", "deletion", "info", "installation", "start"}},
    {"process", {"access", "change", "end", "info", "start"}},
    {"registry", {"access", "change", "creation", "deletion"}},
    {"session", {"start", "end", "info"}},
    {"threat", {"indicator"}},
    {"vulnerability", {"info"}},
    {"web", {"access", "error", "info"}},
};
// ECS 9.4.0 types of the fields castgate writes ("ip", "long", "keyword"; text kinds as keyword).
const std::map<std::string, std::string> kFieldTypes = {
    {"destination.address", "keyword"},
    {"destination.domain", "keyword"},
    {"destination.ip", "ip"},
    {"destination.port", "long"},
    {"destination.user.name", "keyword"},
    {"ecs.version", "keyword"},
    {"event.action", "keyword"},
    {"event.category", "keyword"},
    {"event.dataset", "keyword"},
    {"event.duration", "long"},
    {"event.id", "keyword"},
    {"event.kind", "keyword"},
    {"event.module", "keyword"},
    {"event.outcome", "keyword"},
    {"event.reason", "keyword"},
    {"event.sequence", "long"},
    {"event.type", "keyword"},
    {"file.directory", "keyword"},
    {"file.mode", "keyword"},
    {"file.name", "keyword"},
    {"file.path", "keyword"},
    {"file.size", "long"},
    {"observer.hostname", "keyword"},
    {"observer.product", "keyword"},
    {"observer.type", "keyword"},
    {"observer.vendor", "keyword"},
    {"process.command_line", "keyword"},
    {"process.exit_code", "long"},
    {"related.user", "keyword"},
    {"rule.name", "keyword"},
    {"source.ip", "ip"},
    {"source.port", "long"},
    {"user.email", "keyword"},
    {"user.group.id", "keyword"},
    {"user.group.name", "keyword"},
    {"user.id", "keyword"},
    {"user.name", "keyword"},
    {"error.code", "keyword"},
    {"error.message", "keyword"},
    {"network.protocol", "keyword"},
    {"network.transport", "keyword"},
    {"source.bytes", "long"},
    {"destination.bytes", "long"},
};

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Every ECS field of `j` has its ECS type; returns what does not.
void check_types(const json& j, const std::string& prefix, std::vector<std::string>& wrong) {
  for (auto& [key, value] : j.items()) {
    std::string name = prefix.empty() ? key : prefix + "." + key;
    if (name == "castgate" || name == "asciicast" || name == "@timestamp") continue;
    if (value.is_object()) {
      check_types(value, name, wrong);
      continue;
    }
    auto type = kFieldTypes.find(name);
    if (type == kFieldTypes.end()) {
      wrong.push_back(name + " is not a field the catalog knows");
      continue;
    }
    auto ok = [&](const json& v) {
      if (type->second == "long") return v.is_number_integer();
      if (type->second == "ip") return v.is_string() && is_ip(v.get<std::string>());
      return v.is_string();
    };
    bool good = value.is_array() ? std::all_of(value.begin(), value.end(), ok) : ok(value);
    if (!good) wrong.push_back(name + " is not of ECS type " + type->second);
  }
}

}  // namespace

TEST_CASE("every event kind is classified as ECS 9.4.0 allows") {
  std::set<std::string_view> actions;
  for (const auto& e : event_catalog()) {
    CAPTURE(e.action);
    CHECK(actions.insert(e.action).second);
    CHECK(kEcsKinds.count(e.kind));
    REQUIRE_FALSE(e.category.empty());
    REQUIRE_FALSE(e.type.empty());
    for (auto c : e.category) {
      CAPTURE(c);
      REQUIRE(kExpectedTypes.count(c));
      for (auto t : e.type) {
        CAPTURE(t);
        CHECK(kExpectedTypes.at(c).count(t));
      }
    }
  }
  // The one type chosen per event: an upload is file/creation.
  CHECK(kExpectedTypes.at("file").count("creation"));
}

namespace {

// A file of the source tree, read whole: JSON for a .json file, else a string.
json published_file(const std::string& path) {
  std::ifstream in(std::string(CASTGATE_SOURCE_DIR) + "/" + path);
  REQUIRE(in);
  if (path.ends_with(".json")) return json::parse(in);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every value of a vocabulary enum: they are numbered from 0 without gaps, and to_string has no
// name for the first number past them (and the compiler checks its switch names every value).
template <typename Enum>
std::set<std::string> vocabulary() {
  std::set<std::string> names;
  for (int i = 0;; ++i) {
    std::string_view name = to_string(static_cast<Enum>(i));
    if (name.empty()) return names;
    names.emplace(name);
  }
}

}  // namespace

TEST_CASE("every end reason and channel kind is listed in the JSON Schema and in docs/events.md") {
  json schema = published_file("docs/events.schema.json");
  std::string doc = published_file("docs/events.md").get<std::string>();
  const json& castgate = schema["properties"]["castgate"]["properties"];
  auto listed = [&](const char* field) {
    std::set<std::string> values;
    for (const auto& v : castgate[field]["enum"]) values.insert(v.get<std::string>());
    return values;
  };
  const std::map<std::string, std::set<std::string>> vocabularies = {
      {"end_reason", vocabulary<EndReason>()},
      {"channel_kind", vocabulary<ChannelKind>()},
      {"channel_type", vocabulary<ChannelType>()},
  };
  for (const auto& [field, names] : vocabularies) {
    INFO("castgate.", field);
    CHECK(names.size() > 1);
    CHECK(listed(field.c_str()) == names);  // a new value is documented, a retired one is not
    for (const auto& name : names) {
      INFO("castgate.", field, " ", name);
      CHECK(doc.find("`" + name + "`") != std::string::npos);
    }
  }
}

TEST_CASE("the catalog lists exactly the actions of the published JSON Schema") {
  json schema = published_file("docs/events.schema.json");
  std::set<std::string> in_schema;
  for (const auto& a : schema["properties"]["event"]["properties"]["action"]["enum"])
    in_schema.insert(a.get<std::string>());
  std::set<std::string> in_catalog;
  for (const auto& e : event_catalog()) in_catalog.insert(std::string(e.action));
  CHECK(in_schema == in_catalog);
}

TEST_CASE("the player keeps exactly the schema's top-level members of a re-encoded event") {
  json schema = published_file("docs/events.schema.json");
  std::set<std::string> in_schema, in_player;
  for (auto& [key, value] : schema["properties"].items()) in_schema.insert(key);
  for (auto key : player::castgate_top_level_members()) in_player.insert(std::string(key));
  CHECK(in_schema == in_player);
}

TEST_CASE("written events carry their catalog class, ECS's common fields and ECS field types") {
  testing::MemorySink sink;
  ManualClock clock;
  SessionLogOptions opts;
  opts.instance = "gw-1";
  SessionLog log(opts, "s1", Endpoint{"192.0.2.7", 50000}, sink, std::make_shared<Backlog>(1 << 20),
                 clock);
  log.emit(EventKind{"connection.accepted", "", ""});
  Identity id;
  id.subject = "oidc:t:o";
  id.name = "alice";
  id.groups = {"ops", "0b6f5c1e-2a4d-4c1b-9f3e-7d8a9b0c1d2e"};
  id.issuer = "https://login.example";
  id.auth_method = "oidc-device";
  log.set_identity(id);
  SUBCASE("a target named by its DNS name") {
    log.set_target("db1.int", Endpoint{"db1.internal.example", 22}, "ubuntu");
  }
  SUBCASE("a target named by its address") {
    log.set_target("db1.int", Endpoint{"10.0.0.5", 22}, "ubuntu");
  }
  log.emit(EventKind{"session.start", "success", ""});
  ChannelRecording rec(log, 0, clock, nullptr);
  ChannelHeader h;
  h.kind = ChannelKind::kShell;
  rec.start(h);
  rec.from_target("hello\r\n", false);
  rec.finish();
  // A git clone and an rsync upload (real captures): their file.transfer events too.
  int channel = 1;
  for (const char* name : {"clone-v0", "rsync-up"}) {
    auto read = [&](const char* ext) {
      std::ifstream in(
          std::string(CASTGATE_SOURCE_DIR) + "/tests/asciicast/data/transfers/" + name + ext,
          std::ios::binary);
      REQUIRE(in);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    ChannelRecording transfer(log, channel++, clock, nullptr);
    ChannelHeader th;
    th.kind = ChannelKind::kExec;
    th.command = read(".exec");
    transfer.start(th);
    transfer.from_user(read(".from_user"));
    transfer.from_target(read(".from_target"), false);
    transfer.finish();
  }
  json channel_end;
  log.add_byte_counts(channel_end, 3, 7);
  log.emit(EventKind{"channel.end", "", "closed"}, std::move(channel_end), 0);
  json session_end{{"network", {{"protocol", "ssh"}, {"transport", "tcp"}}}};
  log.add_byte_counts(session_end, 3, 7);
  log.end(EventKind{"session.end", "", "closed"}, std::move(session_end));
  REQUIRE(sink.lines.size() >= 6);
  int transfers = 0;
  for (const auto& line : sink.lines) {
    json j = json::parse(line);
    CAPTURE(line);
    const EventClass* c = event_class(j["event"]["action"].get<std::string>());
    REQUIRE(c);
    CHECK(j["event"]["kind"] == std::string(c->kind));
    json category = json::array(), type = json::array();
    for (auto v : c->category) category.push_back(v);
    for (auto v : c->type) type.push_back(v);
    // The one type chosen per event: an upload is file/creation.
    if (j["event"]["action"] == "file.transfer" && j["castgate"]["file"]["direction"] == "upload")
      type = {"creation"};
    CHECK(j["event"]["category"] == category);
    CHECK(j["event"]["type"] == type);
    CHECK(j["ecs"]["version"] == std::string(kEcsVersion));
    CHECK(j["event"]["module"] == "castgate");
    CHECK(j["event"]["dataset"] == "castgate.audit");
    CHECK(j["event"]["sequence"] == j["castgate"]["seq"]);
    CHECK(j["event"]["id"] == "s1:" + j["castgate"]["seq"].dump());
    CHECK(j["observer"]["hostname"] == "gw-1");
    std::vector<std::string> wrong;
    check_types(j, "", wrong);
    CHECK_MESSAGE(wrong.empty(), wrong.front());
    if (j["event"]["action"] == "session.start") {
      CHECK(j["destination"]["user"]["name"] == "ubuntu");
      CHECK(j["related"]["user"] == json::array({"alice", "ubuntu"}));
      CHECK(j["user"]["group"]["name"] == json::array({"ops"}));
      CHECK(j["user"]["group"]["id"] == json::array({"0b6f5c1e-2a4d-4c1b-9f3e-7d8a9b0c1d2e"}));
      CHECK(j["destination"].contains("domain") != j["destination"].contains("ip"));
      CHECK_FALSE(j["user"].contains("target"));
    }
    if (j["event"]["action"] == "file.transfer") {
      ++transfers;
      CHECK(j["event"]["outcome"] == "success");
      CHECK(j["castgate"]["file"].contains("bytes_read"));
      CHECK((j["castgate"].contains("git") || j["castgate"].contains("rsync")));
    }
    if (j["event"]["action"] == "session.end") {
      CHECK(j["source"]["bytes"] == 3);
      CHECK(j["destination"]["bytes"] == 7);
      CHECK(j["network"]["transport"] == "tcp");
    }
  }
  CHECK(transfers == 2);
}
