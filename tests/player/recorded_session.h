// Records made by castgate's own writer (SessionLog, ChannelRecording) for the player's tests,
// and a way to hand them to the player as a stored file.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "asciicast/chain.h"
#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "player/log_reader.h"
#include "player/verify.h"
#include "tests/asciicast/memory_sink.h"

namespace castgate::player::testing {

using asciicast::testing::MemorySink;

// The end castgate's parent process writes for a session whose worker process died: session.lost,
// continuing the chain, final and signed, with castgate.lost.
inline asciicast::EventKind session_lost_kind() {
  return {"session.lost", "failure",
          "the castgate worker process serving this session ended unexpectedly (killed by signal "
          "9); events it had not yet written are lost"};
}
inline nlohmann::json session_lost_fields(bool cut = false) {
  nlohmann::json lost = {{"worker_pid", 1234}, {"signal", 9}};
  if (cut) lost["cut"] = true;
  return {{"castgate", {{"lost", lost}}}};
}

// The lines of session `id`: start, one shell channel printing each of `outputs` in turn, and
// the signed end (`end_kind` with `end_fields`).
inline std::vector<std::string> record_session(
    const std::string& id, const Ed25519PrivateKey& key, const std::vector<std::string>& outputs,
    const asciicast::EventKind& end_kind = {"session.end", "", "closed"},
    const nlohmann::json& end_fields = nlohmann::json::object()) {
  MemorySink sink;
  ManualClock clock;
  asciicast::SessionLogOptions opts;
  opts.instance = "gw-test";
  asciicast::LocalRecordSigner signer(key);
  opts.signing_key = &signer;
  asciicast::SessionLog log(opts, id, asciicast::Endpoint{"192.0.2.7", 50000}, sink,
                            std::make_shared<asciicast::Backlog>(1 << 20), clock);
  Identity alice;
  alice.subject = "alice";
  alice.email = "alice@example.com";
  log.set_identity(alice);
  log.set_target("db1.int", asciicast::Endpoint{"10.0.0.5", 22}, "ubuntu");
  log.emit(asciicast::EventKind{"session.start", "success", ""});
  {
    asciicast::ChannelRecording rec(log, 0, clock, nullptr);
    asciicast::ChannelHeader h;
    h.kind = asciicast::ChannelKind::kShell;
    h.pty = true;
    rec.start(h);
    for (const auto& text : outputs) {
      clock.advance(std::chrono::milliseconds(100));
      rec.from_target(text, false);
    }
    rec.finish();
  }
  log.end(end_kind, end_fields);
  return sink.lines;
}

inline RecordingKey recording_key_of(const Ed25519PrivateKey& key) {
  std::string raw = key.public_key_raw();
  return RecordingKey{asciicast::recording_key_id(raw), raw};
}

inline uint64_t seq_of(const std::string& line) {
  return nlohmann::json::parse(line)["castgate"]["seq"].get<uint64_t>();
}

// Index of the first line holding `text`.
inline size_t line_with(const std::vector<std::string>& lines, const std::string& text) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find(text) != std::string::npos) return i;
  throw std::runtime_error("no line holds " + text);
}

// `lines` written to a temporary file (removed with this object) and mapped as the player maps
// stored logs.
class StoredLog {
 public:
  explicit StoredLog(const std::vector<std::string>& lines) {
    char name[] = "/tmp/castgate-player-test-XXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    path_ = name;
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!written) throw std::runtime_error("cannot write " + path_);
    file_ = std::make_unique<MappedFile>(path_);
  }
  ~StoredLog() { ::unlink(path_.c_str()); }
  StoredLog(const StoredLog&) = delete;
  StoredLog& operator=(const StoredLog&) = delete;
  const MappedFile& file() const { return *file_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<MappedFile> file_;
};

}  // namespace castgate::player::testing
