#include "gateway/supervisor_timing.h"

#include <algorithm>

namespace castgate {

std::chrono::milliseconds RestartBackoff::died(SteadyTime now) {
  bool quick = now - started_ < kQuickDeath;
  quick_deaths_ = quick ? quick_deaths_ + 1 : 0;
  if (!quick) return std::chrono::milliseconds(0);
  return std::min(kMaxDelay, std::chrono::milliseconds(500 << std::min(quick_deaths_, 5)));
}

bool StuckChannel::full(SteadyTime now) {
  if (!since_) since_ = now;
  return now - *since_ > kLimit;
}

std::string HeartbeatVerdict::answer(HealthRoute route, const HeartbeatView& view) {
  if (view.signer_gone) return "the signer process is gone";
  if (route == HealthRoute::kLive) {
    // A stalled log shipper is cured by the shipper, not by a restart: only a loop stuck for
    // another reason fails liveness.
    if (view.silent > kLoopStuck && !view.output_stalled)
      return "castgate's main loop has not run for " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(view.silent).count()) +
             "s";
    return "";
  }
  if (view.past_stall_limit) return "recording output stalled";
  if (view.silent > kBeatLost)
    return view.output_stalled ? "recording output stalled" : "castgate's main loop is not running";
  return view.ready;
}

}  // namespace castgate
