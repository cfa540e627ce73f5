// The recording as a whole, driven the way a hostile user and target can drive it: arbitrary
// identity strings, channel metadata (command, subsystem, TERM, sizes, pty or not) and data in
// both directions, resizes, notices and markers, then the end. Whatever comes in, every line must
// be valid UTF-8, parse as a JSON object, stay within the line limit and extend the hash chain;
// nothing may throw; a secret typed after a password prompt must never appear.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "asciicast/alert_rules.h"
#include "asciicast/chain.h"
#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "asciicast/utf8.h"
#include "common/clock.h"
#include "common/crypto.h"

using namespace castgate;
using namespace castgate::asciicast;

namespace {

constexpr size_t kMaxLine = 4096;

struct CheckingSink final : LineSink {
  std::string prev = std::string(kGenesisHash);
  uint64_t seq = 0;
  bool secret_may_appear = false;  // the input itself holds it (as output, say)
  void submit(std::string_view line, const ChainPoint&, const std::shared_ptr<Backlog>&) override {
    if (line.size() > kMaxLine || !utf8_valid(line)) std::abort();
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) std::abort();
    if (j["castgate"]["seq"] != seq || j["castgate"]["prev"] != prev) std::abort();
    if (!secret_may_appear && line.find("S3cr3tValue") != std::string::npos) std::abort();
    prev = chain_hash(line);
    ++seq;
  }
  bool has_room() const override { return true; }
  SinkHealth health() const override { return SinkHealth::kHealthy; }
};

// Takes a length-prefixed piece of the input.
std::string_view take(std::string_view& in, size_t max) {
  if (in.empty()) return {};
  size_t n = static_cast<uint8_t>(in[0]) % (max + 1);
  in.remove_prefix(1);
  auto piece = in.substr(0, n);
  in.remove_prefix(piece.size());
  return piece;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Ed25519PrivateKey key = Ed25519PrivateKey::generate();
  static const LocalRecordSigner signer(key);
  static const AlertRules alerts = AlertRules::compile(AlertRules::defaults());
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 4) return 0;
  uint8_t flags = static_cast<uint8_t>(in[0]);
  int width = static_cast<uint8_t>(in[1]) * 3, height = static_cast<uint8_t>(in[2]);
  in.remove_prefix(3);

  CheckingSink sink;
  sink.secret_may_appear = in.find("S3cr3tValue") != std::string_view::npos;
  ManualClock clock;
  SessionLogOptions opts;
  opts.instance = "fuzz";
  opts.max_line = kMaxLine;
  opts.signing_key = &signer;
  SessionLog log(opts, "fuzzsession", Endpoint{"192.0.2.1", 1}, sink,
                 std::make_shared<Backlog>(SIZE_MAX), clock);
  Identity id;
  id.subject = std::string(take(in, 255)) + std::string((flags & 1) ? 8000 : 0, 'x');
  id.name = std::string(take(in, 64));
  id.email = std::string(take(in, 64));
  id.issuer = "fuzz";
  id.auth_method = "publickey";
  for (int g = 0; g < (flags >> 5); ++g) id.groups.emplace_back(take(in, 200));
  log.set_identity(id);
  log.set_target(std::string(take(in, 64)), Endpoint{"10.0.0.1", 22}, std::string(take(in, 64)));

  ChannelRecording rec(log, 0, clock, &alerts);
  ChannelHeader h;
  h.width = width;
  h.height = height;
  h.pty = flags & 2;
  h.summarize_binary = !(flags & 1);
  h.term = std::string(take(in, 32));
  h.title = std::string(take(in, 64));
  static constexpr ChannelKind kKinds[] = {ChannelKind::kShell, ChannelKind::kExec,
                                           ChannelKind::kSubsystem, ChannelKind::kExec};
  h.kind = kKinds[(flags >> 2) & 3];
  if (h.kind == ChannelKind::kSubsystem) {
    h.command = (flags & 16) ? "sftp" : std::string(take(in, 32));
  } else if (h.kind == ChannelKind::kExec) {
    h.command = (flags & 16) ? "scp -f /tmp/x" : std::string(take(in, 255));
    if (flags & 1) h.command += std::string(20000, ';');  // longer than any line
  }
  rec.start(h);
  while (!in.empty()) {
    uint8_t op = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    clock.advance(std::chrono::microseconds(op * 997));
    switch (op % 8) {
      case 0:
      case 1:
        rec.from_target(take(in, 255), op & 0x10);
        break;
      case 2:
      case 3:
        rec.from_user(take(in, 255));
        break;
      case 4:
        rec.resize(op, op / 3);
        break;
      case 5:
        rec.notice(take(in, 64), op & 0x10);
        break;
      case 6:
        rec.marker(take(in, 64));
        break;
      default:
        // A password prompt, then a secret that must never be recorded.
        rec.from_target("\r\n[sudo] password for alice: ", op & 0x10);
        rec.from_user("S3cr3tValue");
        rec.from_user((op & 0x20) ? "\r" : "\n");
        break;
    }
  }
  rec.finish();
  log.end(EventKind{"session.end", "", "done"}, nlohmann::json::object());
  return 0;
}
