// A LineSink that keeps every line in memory, for tests of what castgate writes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "asciicast/line_sink.h"

namespace castgate::asciicast::testing {

struct MemorySink final : LineSink {
  std::vector<std::string> lines;
  void submit(std::string_view line, const ChainPoint&, const std::shared_ptr<Backlog>&) override {
    lines.emplace_back(line);
  }
  bool has_room() const override { return true; }
  SinkHealth health() const override { return SinkHealth::kHealthy; }
};

}  // namespace castgate::asciicast::testing
