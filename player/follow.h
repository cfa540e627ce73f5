// castgate-player follow: a live view for incident response. Reads a growing stream of events
// (`kubectl logs -f deploy/castgate | castgate-player follow --user alice`, or a file it tails),
// follows the first session matching the filters that opens a terminal, and shows that terminal
// as it happens, rebuilt from the events by ScreenView.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "player/screen_view.h"

namespace castgate::player {

// Splits a byte stream into lines, holding at most kMaxLine bytes of an unfinished line: a line
// longer than that (castgate's own are at most 64 KiB, a container runtime's escaping makes them
// a few times longer) is skipped whole and counted.
class LineAssembler {
 public:
  static constexpr size_t kMaxLine = size_t{1} << 20;
  void feed(std::string_view bytes, const std::function<void(std::string_view)>& on_line);
  // The stream ended: an unfinished last line is passed on as it is.
  void finish(const std::function<void(std::string_view)>& on_line);
  size_t skipped() const { return skipped_; }
  size_t held() const { return partial_.size(); }

 private:
  std::string partial_;
  bool skipping_ = false;
  size_t skipped_ = 0;
};

struct FollowFilter {
  std::string user;     // user.id, user.name or user.email
  std::string target;   // destination.address
  std::string session;  // castgate.session
};

// Follows one session's terminal through the lines of a stream, one line at a time. Lines of
// other sessions are skipped without being kept; only the followed channel's screen and the
// identity on its lines are held.
class SessionFollower {
 public:
  SessionFollower(FollowFilter filter, ScreenView& view);
  void line(std::string_view line);
  const StatusLine& status() const { return status_; }
  StatusLine& status() { return status_; }
  bool following() const { return !status_.session.empty(); }
  bool ended() const { return ended_; }
  // Something visible changed since the last call.
  bool take_dirty() {
    bool d = dirty_;
    dirty_ = false;
    return d;
  }
  // Sessions whose terminal was shown, so far.
  size_t sessions_followed() const { return followed_count_; }

 private:
  bool matches(std::string_view user_id, std::string_view user_name, std::string_view email,
               std::string_view target, std::string_view session) const;
  FollowFilter filter_;
  ScreenView& view_;
  StatusLine status_;
  bool ended_ = false;
  bool dirty_ = true;
  uint64_t last_seq_ = 0;
  bool any_seq_ = false;
  size_t followed_count_ = 0;
};

struct FollowOptions {
  FollowFilter filter;
  std::string input = "-";  // "-": standard input; else a file, tailed
  bool once = false;        // exit when the followed session ends
};

// Runs the live view on standard output until the input ends, the session ends (with
// `once` or a session filter), or the analyst quits ('q', Ctrl-C). Returns the exit status.
int follow_stream(const FollowOptions& options);

}  // namespace castgate::player
