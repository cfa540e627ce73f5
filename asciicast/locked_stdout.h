// A LineSink for processes that write few lines and may wait for each: castgate's parent and its
// signer. Each line is written whole, at once, under the lock shared with the other processes
// that write to stdout (output_lock.h). A non-blocking stdout (the flag belongs to the open file,
// which the processes share) is waited on; a line that cannot be written whole within
// kWriteTimeoutMs makes ok() false for good.
#pragma once

#include "asciicast/line_sink.h"
#include "common/output_lock.h"

namespace castgate::asciicast {

class LockedStdout final : public LineSink {
 public:
  static constexpr int kWriteTimeoutMs = 10000;
  explicit LockedStdout(OutputLock* lock, int fd = 1) : lock_(lock), fd_(fd) {}
  void submit(std::string_view line, const ChainPoint& point,
              const std::shared_ptr<Backlog>& backlog) override;
  bool has_room() const override { return true; }
  SinkHealth health() const override { return ok_ ? SinkHealth::kHealthy : SinkHealth::kBroken; }
  bool ok() const { return ok_; }

 private:
  OutputLock* lock_;
  int fd_;
  bool ok_ = true;
};

}  // namespace castgate::asciicast
