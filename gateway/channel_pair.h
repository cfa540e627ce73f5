// One channel relayed between the user (downstream) and the target (upstream), with its
// recording. The pair owns both libssh channels. Its state changes in step() and in the calls its
// session makes (open_upstream, refuse, fail_open, terminate), never in a libssh callback: those
// only set flags and ask for a step, so nothing is torn down while libssh is still on the stack.
//
// Order rules (OpenSSH channels.c): data before EOF; data, exit-status/exit-signal, EOF, then
// CLOSE towards the user; a side's EOF is passed on once everything it sent before is relayed.
#pragma once

#include <libssh/callbacks.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "asciicast/channel_kind.h"
#include "asciicast/channel_recording.h"
#include "asciicast/end_reason.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "gateway/config.h"
#include "gateway/policy.h"
#include "gateway/ssh_handles.h"
#include "gateway/targets.h"

namespace castgate {

// What a channel needs from the session that owns it.
class ChannelHost {
 public:
  virtual ~ChannelHost() = default;
  virtual ssh_session upstream_session() = 0;  // null until the target is signed in to
  virtual asciicast::SessionLog& log() = 0;
  virtual bool recording_has_room() = 0;  // false: stop reading from peers for now
  virtual bool recording_enabled() const = 0;
  virtual const asciicast::AlertRules* alert_rules() const = 0;
  virtual std::string recording_refusal() = 0;  // non-empty when recording is impossible
  virtual const Clock& clock() const = 0;
  virtual const Target* target() const = 0;
  virtual const PolicyDecision& decision() const = 0;
  virtual std::string title() const = 0;
  virtual void note_activity() = 0;
  virtual void request_step() = 0;  // run the session's step() again soon
  // A limit against misbehaving peers was passed: the session closes, with an audit event.
  virtual void limit_exceeded(const std::string& limit, const std::string& detail) = 0;
  // Claims `cells` (columns x rows) for this channel's terminal from the connection's budget;
  // false if that would pass it. 0 gives the channel's share back.
  virtual bool resize_terminal(int channel, long cells) = 0;
  virtual const GatewayConfig& config() const = 0;
  // A channel ended: its totals for the session's end event.
  virtual void channel_finished(uint64_t bytes_to_user, uint64_t bytes_to_target,
                                std::optional<int> exit_status,
                                const std::optional<std::string>& exit_signal) = 0;
};

using asciicast::ChannelType;

class ChannelPair {
 public:
  enum class State {
    kWaitingForUpstream,  // the user's open request is held until the target is ready
    kOpeningUpstream,
    kOpen,
    kRefusing,  // accepted only to tell the user why nothing will run
    kClosing,
    kFinished,
  };

  ChannelPair(ChannelHost& host, int id, ChannelType type, ssh::Message open_request);
  ~ChannelPair();
  ChannelPair(const ChannelPair&) = delete;
  ChannelPair& operator=(const ChannelPair&) = delete;

  int id() const { return id_; }
  State state() const { return state_; }
  ChannelType type() const { return type_; }
  bool finished() const { return state_ == State::kFinished; }
  ssh_channel downstream() const { return down_.get(); }

  // The target is ready: open the matching channel there.
  void open_upstream();
  // Accept the user's channel only to print `message` and end it (refused or failed sessions).
  void refuse(std::string message);
  // The target could not be reached: fail the held open request.
  void fail_open(const std::string& why);
  // A channel request from the user (pty-req, env, exec, ...); the pair takes ownership.
  void on_downstream_request(ssh::Message request);
  // Advances opening, requests, data and close; call after any I/O on either connection.
  void step();
  // Ends the channel now, telling the user why (shutdown, idle timeout, recording failure).
  void terminate(const std::string& message, const asciicast::Ending& ending);
  void notice(const std::string& message);
  // Writes the end event now if the channel has not finished on its own (session teardown).
  void abandon(const asciicast::Ending& ending) {
    if (!finished()) finish(ending);
  }

 private:
  struct PendingRequest {
    enum class Kind { kPty, kEnv, kShell, kExec, kSubsystem, kWindowChange, kSignal } kind;
    ssh::Message msg;  // replied to when the target answers; null if no reply is due
    std::string a, b;
    int cols = 0, rows = 0;
  };
  enum Direction { kToUser = 0, kToTarget = 1 };

  void accept_downstream();
  // Checks a requested terminal size against the limits; false (and the session closing) if not.
  bool terminal_size_ok(int cols, int rows);
  // Queues a request for the target, within --max-pending-requests.
  bool queue(PendingRequest request);
  void install_down_callbacks();
  void install_up_callbacks();
  void advance_requests();
  bool start_recording(const PendingRequest& r);
  void pump();
  bool move(Direction dir, bool is_stderr, size_t& budget);
  void propagate_close();
  // The target's exit status or signal to the user, once (if it came).
  void forward_exit(ssh_channel down);
  void run_refusal(const PendingRequest& r);
  void finish(const asciicast::Ending& ending);
  // Why a channel a peer closed ends: the target, if it ended its side (EOF or CLOSE) before the
  // user's CLOSE came; else the user.
  asciicast::Ending closed_by_peer() const;
  void emit_open_event();
  void record(Direction dir, bool is_stderr, std::string_view data);
  bool user_drained(bool is_stderr);
  bool target_drained();
  bool user_input_drained();

  // libssh channel callbacks (noexcept trampolines: they only record what happened).
  static int on_data_cb(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                        void* self) noexcept;
  static void on_eof_cb(ssh_session, ssh_channel, void* self) noexcept;
  static void on_close_cb(ssh_session, ssh_channel, void* self) noexcept;
  static void on_exit_status_cb(ssh_session, ssh_channel, int status, void* self) noexcept;
  static void on_exit_signal_cb(ssh_session, ssh_channel, const char* sig, int core,
                                const char* errmsg, const char* lang, void* self) noexcept;
  static void on_signal_cb(ssh_session, ssh_channel, const char* sig, void* self) noexcept;

  ChannelHost& host_;
  const int id_;
  const ChannelType type_;
  State state_ = State::kWaitingForUpstream;
  ssh::Message open_request_;
  std::deque<PendingRequest> requests_;
  bool request_in_flight_ = false;
  bool program_started_ = false;  // shell/exec/subsystem requested
  bool pty_ = false;
  std::string term_;
  int cols_ = 80, rows_ = 24;
  std::optional<asciicast::ChannelKind> program_kind_;  // once a program was requested
  std::string program_;
  std::string forward_host_, forward_origin_;
  int forward_port_ = 0, forward_origin_port_ = 0;

  // Half-close bookkeeping.
  bool user_eof_seen_ = false, user_close_seen_ = false;  // from the user
  // The user's CLOSE came before the target's EOF or CLOSE (the end reason).
  bool user_closed_first_ = false;
  std::chrono::steady_clock::time_point user_close_at_{};
  // How long a CLOSE from the user waits for the target's exit status (see propagate_close).
  static constexpr std::chrono::seconds kExitStatusWait{2};
  bool target_eof_seen_ = false, target_close_seen_ = false;  // from the target
  bool eof_sent_to_target_ = false, eof_sent_to_user_ = false;
  bool close_sent_to_target_ = false, close_sent_to_user_ = false;
  std::optional<int> exit_status_;
  std::optional<std::string> exit_signal_;
  bool exit_core_ = false;
  std::string exit_errmsg_;
  bool exit_forwarded_ = false;
  // Data read from one side that the other side's window has not taken yet.
  struct InFlight {
    std::unique_ptr<char[]> data;
    size_t len = 0, offset = 0;
    bool empty() const { return offset >= len; }
    void fill(size_t n) {
      data.reset(new char[n]);
      len = offset = 0;
    }
    void release() {
      data.reset();
      len = offset = 0;
    }
  };
  InFlight in_flight_[2][2];  // [direction][is_stderr]
  // libssh holds data for this stream (its data callback said so); saves polling empty buffers.
  bool buffered_[2][2] = {};
  // A limit against misbehaving peers was passed (a peer sending past its window, which libssh
  // 0.10 keeps buffering; request floods; absurd terminal sizes): step() closes the session.
  void note_limit(const std::string& limit, const std::string& detail);
  std::string limit_, limit_detail_;
  bool limit_reported_ = false;
  int env_requests_ = 0;
  std::optional<asciicast::Ending> ending_;  // why it ends, once that is known
  std::chrono::steady_clock::time_point closing_since_{};
  std::chrono::steady_clock::time_point opened_at_{};
  uint64_t bytes_to_user_ = 0, bytes_to_target_ = 0;

  std::unique_ptr<asciicast::ChannelRecording> recording_;
  // The channels are declared last, so freed first: the destructor takes the callbacks off them,
  // then the channels go, then the callback structs they pointed to.
  ssh_channel_callbacks_struct down_callbacks_{};
  ssh_channel_callbacks_struct up_callbacks_{};
  ssh::Channel up_;
  ssh::Channel down_;
};

std::string_view to_string(ChannelPair::State state);

}  // namespace castgate
