// Every event castgate writes, by its action, with its Elastic Common Schema classification: one
// table, so that categories and types are chosen once, checked against ECS's allowed values and
// expected category/type pairs (tests/asciicast/event_catalog_test.cpp), and listed in
// docs/events.md and the JSON Schema.
#pragma once

#include <string_view>
#include <vector>

namespace castgate::asciicast {

// The ECS release whose field definitions the catalog follows (written as ecs.version).
inline constexpr std::string_view kEcsVersion = "9.4.0";
// event.dataset and event.module of every event castgate writes.
inline constexpr std::string_view kEventDataset = "castgate.audit";
inline constexpr std::string_view kEventModule = "castgate";

struct EventClass {
  std::string_view action;                 // event.action, castgate's name
  std::string_view kind;                   // event.kind: "event" or "alert"
  std::vector<std::string_view> category;  // event.category
  std::vector<std::string_view> type;      // event.type
};

const std::vector<EventClass>& event_catalog();
// The class of `action`; null for an action the catalog does not list (a bug: castgate logs it and
// classifies the event as process/info).
const EventClass* event_class(std::string_view action);

}  // namespace castgate::asciicast
