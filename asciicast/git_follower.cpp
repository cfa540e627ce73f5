#include "asciicast/git_follower.h"

#include <algorithm>
#include <deque>

#include "asciicast/wire_text.h"
#include "common/text.h"

namespace castgate::asciicast {
namespace git_detail {

constexpr size_t kMaxPktLine = 65520;  // git's LARGE_PACKET_MAX, the 4 length digits included
constexpr size_t kMaxWanted = 8;       // wanted ids kept for the record
constexpr size_t kMaxRefs = 8;         // ref updates kept for the record (lines stay short)
// The least a packed object can take: a type/size byte and a zlib stream (2 header bytes, an
// empty final block, the Adler-32 checksum). A pack header announcing more objects than its bytes
// can hold lies.
constexpr uint64_t kMinObjectBytes = 8;
constexpr uint64_t kPackTrailerBytes = 20;  // SHA-1 of the pack (SHA-256 ones are longer)

// ---- pkt-line --------------------------------------------------------------------------------

struct Packet {
  enum class Kind { kData, kFlush, kDelim, kResponseEnd } kind = Kind::kData;
  std::string_view data;
};

enum class Read { kPacket, kNeedMore, kBad };

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One pkt-line from the start of `in`: 4 hex digits of length (the digits included), or 0000
// flush, 0001 delim, 0002 response-end. `used` is its size.
Read read_packet(std::string_view in, Packet& p, size_t& used, std::string& error) {
  if (in.size() < 4) {
    for (char c : in)
      if (hex_digit(c) < 0) {
        error = "not a pkt-line length";
        return Read::kBad;
      }
    return Read::kNeedMore;
  }
  size_t len = 0;
  for (int i = 0; i < 4; ++i) {
    int d = hex_digit(in[i]);
    if (d < 0) {
      error = "not a pkt-line length";
      return Read::kBad;
    }
    len = len * 16 + static_cast<size_t>(d);
  }
  if (len < 4) {
    if (len == 3) {
      error = "invalid pkt-line length 0003";
      return Read::kBad;
    }
    p.kind = len == 0   ? Packet::Kind::kFlush
             : len == 1 ? Packet::Kind::kDelim
                        : Packet::Kind::kResponseEnd;
    p.data = {};
    used = 4;
    return Read::kPacket;
  }
  if (len > kMaxPktLine) {
    error = "pkt-line longer than 65520 bytes";
    return Read::kBad;
  }
  if (in.size() < len) return Read::kNeedMore;
  p.kind = Packet::Kind::kData;
  p.data = in.substr(4, len - 4);
  used = len;
  return Read::kPacket;
}

std::string_view chomp(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

// ---- pack ------------------------------------------------------------------------------------

// A pack passing by: its 12-byte header checked ("PACK", version 2 or 3, object count), the rest
// counted.
class PackCounter {
 public:
  // Returns false (with `error`) when the header is not a pack's.
  bool feed(std::string_view bytes, std::string& error) {
    bytes_ += bytes.size();
    if (header_.size() < 12) {
      header_.append(bytes.substr(0, 12 - header_.size()));
      size_t magic = std::min<size_t>(header_.size(), 4);
      if (header_.compare(0, magic, std::string_view("PACK").substr(0, magic)) != 0) {
        error = "pack data does not start with PACK";
        return false;
      }
      if (header_.size() == 12) {
        uint32_t version = wire::big_endian32(std::string_view(header_).substr(4));
        if (version != 2 && version != 3) {
          error = "pack version " + std::to_string(version) + " is not 2 or 3";
          return false;
        }
        objects_ = wire::big_endian32(std::string_view(header_).substr(8));
      }
    }
    return true;
  }
  // At the end of the pack: whether its bytes can hold what its header announced.
  bool complete(std::string& error) const {
    if (!started()) return true;
    if (!objects_) {
      error = "pack ended inside its header";
      return false;
    }
    if (bytes_ < 12 + kPackTrailerBytes + uint64_t{*objects_} * kMinObjectBytes) {
      error = "pack of " + std::to_string(bytes_) + " bytes cannot hold the " +
              std::to_string(*objects_) + " objects its header announces";
      return false;
    }
    return true;
  }
  bool started() const { return bytes_ > 0; }
  uint64_t bytes() const { return bytes_; }
  std::optional<uint32_t> objects() const { return objects_; }

 private:
  std::string header_;
  uint64_t bytes_ = 0;
  std::optional<uint32_t> objects_;
};

// ---- git -------------------------------------------------------------------------------------

class GitFollower final : public TransferFollower {
 public:
  explicit GitFollower(GitCommand command) : TransferFollower("git"), command_(std::move(command)) {
    details_.service = std::string(to_string(command_.service));
  }

 private:
  enum class Target {
    kAdvertisement,   // v0/v1 refs (or v2 capabilities) up to the flush
    kV2Capabilities,  // after "version 2"
    kV2Idle,          // between v2 responses
    kV2LsRefs,        // ls-refs response lines
    kV2ObjectInfo,    // object-info response lines
    kV2Fetch,         // fetch response sections before packfile
    kV2Packfile,      // packfile section: side-band packets
    kNegotiation,     // v0 upload-pack: ACK/NAK, shallow lines
    kSideBand,        // upload-pack's pack in side-band packets
    kRawPack,         // upload-pack's pack without side-band
    kReport,          // receive-pack's report-status (or nothing)
    kArchiveAck,      // upload-archive: ACK or NACK
    kArchiveFlush,    // upload-archive: the flush after ACK
    kDone,
  };
  enum class User {
    kStart,
    kWants,         // v0 upload-pack: want/shallow/deepen/filter lines
    kHaves,         // after the wants' flush: have lines, flushes, done
    kUploadDone,    // after "done"
    kV2Command,     // "command=" expected (or a flush: the end)
    kV2Caps,        // capability lines of a command
    kV2Args,        // arguments after the delim
    kPushCommands,  // receive-pack: <old> <new> <ref>
    kPushOptions,   // receive-pack push options
    kPushPack,      // receive-pack: the raw pack
    kPushDone,      // nothing more expected
    kArchiveArgs,   // upload-archive: argument lines
    kArchiveDone,
  };
  enum class V2Command { kLsRefs, kFetch, kObjectInfo };

  void fail(std::string why) {
    if (error_.empty()) error_ = "not git " + std::string(to_string(command_.service)) + ": " + why;
  }

  size_t parse(Side side, std::string_view bytes) override {
    return side == kUser ? parse_user(bytes) : parse_target(bytes);
  }

  // ---- the target's side ----

  size_t parse_target(std::string_view in) {
    size_t used = 0;
    while (error_.empty() && used < in.size()) {
      std::string_view rest = in.substr(used);
      if (target_ == Target::kRawPack) {
        std::string e;
        if (!pack_.feed(rest, e)) fail(e);
        return in.size();
      }
      if (target_ == Target::kDone) {
        fail("data after the end of the response");
        break;
      }
      if (target_ == Target::kNegotiation && !user_sideband_known()) break;  // wait for caps
      if (target_ == Target::kNegotiation && !sideband_ &&
          wire::starts_with("PACK", rest.substr(0, 4))) {
        target_ = Target::kRawPack;
        continue;
      }
      if (target_ == Target::kReport && !push_commands_done_) break;  // wait for the commands
      if (target_ == Target::kV2Idle && v2_commands_.empty()) break;  // wait for a command
      Packet p;
      size_t n = 0;
      std::string e;
      Read r = read_packet(rest, p, n, e);
      if (r == Read::kBad) fail(e);
      if (r != Read::kPacket) break;
      target_packet(p);
      used += n;
    }
    return used;
  }

  bool user_sideband_known() const { return user_ != User::kStart && user_ != User::kWants; }

  void advertised_ref_line(std::string_view line, bool first) {
    // "<oid> <ref>[\0<capabilities>]", or "shallow <oid>" (a shallow repository's boundary).
    line = chomp(line);
    if (wire::starts_with(line, "shallow ")) {
      if (!wire::object_id(line.substr(8))) fail("malformed shallow line in the advertisement");
      return;
    }
    std::string_view caps;
    if (auto nul = line.find('\0'); nul != std::string_view::npos) {
      if (!first) return fail("capabilities after the first advertised ref");
      caps = line.substr(nul + 1);
      line = line.substr(0, nul);
    }
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || !wire::object_id(line.substr(0, sp)) ||
        !wire::token(line.substr(sp + 1)))
      return fail("malformed ref advertisement line");
    for (auto& cap : castgate::split(caps, ' ', false))
      if (!cap.empty() && !wire::token(cap)) return fail("malformed capability");
    // An empty repository advertises "capabilities^{}" with a zero id: no ref.
    if (line.substr(sp + 1) != "capabilities^{}") ++details_.advertised_refs;
  }

  void target_packet(const Packet& p) {
    using K = Packet::Kind;
    std::string_view d = p.data;
    if (p.kind == K::kData && wire::starts_with(d, "ERR ")) {
      failure(wire::status_text(d.substr(4)));
      target_ = Target::kDone;
      return;
    }
    switch (target_) {
      case Target::kAdvertisement:
        if (command_.service == GitService::kUploadArchive) {
          target_ = Target::kArchiveAck;
          return target_packet(p);
        }
        if (p.kind == K::kFlush) {
          advertised_ = true;
          target_ =
              command_.service == GitService::kReceivePack ? Target::kReport : Target::kNegotiation;
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet in the advertisement");
        if (!seen_first_line_) {
          seen_first_line_ = true;
          if (chomp(d) == "version 2" && command_.service == GitService::kUploadPack) {
            details_.version = 2;
            target_ = Target::kV2Capabilities;
            return;
          }
          if (chomp(d) == "version 1") {
            details_.version = 1;
            seen_first_line_ = false;  // the v0 advertisement follows
            return;
          }
          return advertised_ref_line(d, true);
        }
        return advertised_ref_line(d, false);
      case Target::kV2Capabilities:
        if (p.kind == K::kFlush) {
          advertised_ = true;
          target_ = Target::kV2Idle;
          return;
        }
        if (p.kind != K::kData || !wire::printable(chomp(d)))
          return fail("malformed v2 capability");
        return;
      case Target::kV2Idle: {
        V2Command c = v2_commands_.front();
        v2_commands_.pop_front();
        target_ = c == V2Command::kFetch    ? Target::kV2Fetch
                  : c == V2Command::kLsRefs ? Target::kV2LsRefs
                                            : Target::kV2ObjectInfo;
        return target_packet(p);
      }
      case Target::kV2ObjectInfo:
        // "size", then "<oid> <size>" lines.
        if (p.kind == K::kFlush) {
          target_ = Target::kV2Idle;
          return;
        }
        if (p.kind != K::kData || !wire::printable(chomp(d)))
          return fail("malformed object-info response line");
        return;
      case Target::kV2LsRefs:
        // "<oid> <ref>[ attributes]" or "unborn <ref>[ attributes]".
        if (p.kind == K::kFlush) {
          target_ = Target::kV2Idle;
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet in a v2 response");
        {
          auto words = castgate::split(chomp(d), ' ', false);
          if (words.size() < 2 || !wire::token(words[1]) ||
              (!wire::object_id(words[0]) && words[0] != "unborn"))
            return fail("malformed ls-refs line");
          ++details_.advertised_refs;
        }
        return;
      case Target::kV2Fetch:
        // Sections: acknowledgments, shallow-info, wanted-refs, packfile-uris, packfile.
        if (p.kind == K::kFlush) {
          target_ = Target::kV2Idle;  // a response without a pack (negotiation continues)
          return;
        }
        if (p.kind == K::kDelim) return;
        if (p.kind != K::kData) return fail("unexpected special packet in a fetch response");
        if (chomp(d) == "packfile") {
          target_ = Target::kV2Packfile;
          return;
        }
        if (chomp(d) == "acknowledgments" || chomp(d) == "shallow-info" ||
            chomp(d) == "wanted-refs" || chomp(d) == "packfile-uris" || chomp(d) == "NAK" ||
            chomp(d) == "ready" || wire::starts_with(d, "ACK ") ||
            wire::starts_with(d, "shallow ") || wire::starts_with(d, "unshallow ") ||
            (d.size() > 41 && wire::object_id(d.substr(0, 40))) ||
            (d.size() > 65 && wire::object_id(d.substr(0, 64))))
          return;
        return fail("unexpected line in a fetch response");
      case Target::kV2Packfile:
        return side_band_packet(p, d, Target::kV2Idle, "a packfile section");
      case Target::kNegotiation:
        if (p.kind == K::kFlush) return;  // after shallow/unshallow lines
        if (p.kind != K::kData) return fail("unexpected special packet in negotiation");
        if (sideband_ && !d.empty() && d[0] >= 1 && d[0] <= 3) {
          target_ = Target::kSideBand;
          return target_packet(p);
        }
        if (chomp(d) == "NAK" || wire::starts_with(d, "ACK ") || wire::starts_with(d, "shallow ") ||
            wire::starts_with(d, "unshallow "))
          return;
        return fail("unexpected line in negotiation");
      case Target::kSideBand:
        return side_band_packet(p, d, Target::kDone, "side-band data");
      case Target::kReport:
        if (report_sideband_) {
          if (p.kind == K::kFlush) {
            target_ = Target::kDone;
            return;
          }
          if (p.kind != K::kData || d.empty()) return fail("malformed side-band packet");
          if (d[0] == 2) return;  // progress, hooks' messages
          if (d[0] == 3) return failure(wire::status_text(d.substr(1)));
          if (d[0] != 1) return fail("side-band packet of an unknown band");
          // The report itself, as pkt-lines inside band 1.
          report_stream_.append(d.substr(1));
          return report_packets();
        }
        return report_packet(p);
      case Target::kArchiveAck:
        if (p.kind != K::kData) return fail("no ACK from upload-archive");
        if (chomp(d) == "ACK") {
          target_ = Target::kArchiveFlush;
          return;
        }
        if (wire::starts_with(d, "NACK ")) {
          failure(wire::status_text(d.substr(5)));
          target_ = Target::kDone;
          return;
        }
        return fail("no ACK from upload-archive");
      case Target::kArchiveFlush:
        if (p.kind != K::kFlush) return fail("no flush after upload-archive's ACK");
        sideband_ = true;
        target_ = Target::kSideBand;
        return;
      case Target::kRawPack:
      case Target::kDone:
        return;
    }
  }

  // A packet of a multiplexed pack (v2's packfile section, v0/v1's side-band): data, or the
  // flush that ends the pack, after which the exchange goes on at `after`.
  void side_band_packet(const Packet& p, std::string_view d, Target after, const char* where) {
    if (p.kind == Packet::Kind::kFlush) {
      pack_complete();
      target_ = after;
      return;
    }
    if (p.kind != Packet::Kind::kData)
      return fail(std::string("unexpected special packet in ") + where);
    side_band(d);
  }

  void side_band(std::string_view d) {
    if (d.empty()) return fail("empty side-band packet");
    switch (d[0]) {
      case 1: {
        if (command_.service == GitService::kUploadArchive) {
          archive_bytes_ += d.size() - 1;
          return;
        }
        std::string e;
        if (!pack_.feed(d.substr(1), e)) fail(e);
        return;
      }
      case 2:
        return;  // progress
      case 3:
        return failure(wire::status_text(d.substr(1)));
      default:
        return fail("side-band packet of an unknown band");
    }
  }

  void pack_complete() {
    std::string e;
    if (!pack_.complete(e)) fail(e);
  }

  // receive-pack's report inside band 1: whole pkt-lines only, bounded.
  void report_packets() {
    std::string_view rest = report_stream_;
    size_t used = 0;
    while (error_.empty()) {
      Packet p;
      size_t n = 0;
      std::string e;
      Read r = read_packet(rest.substr(used), p, n, e);
      if (r == Read::kBad) fail(e);
      if (r != Read::kPacket) break;
      report_packet(p);
      used += n;
    }
    report_stream_.erase(0, used);
    if (report_stream_.size() > kMaxPktLine) fail("report-status packet too long");
  }

  void report_packet(const Packet& p) {
    std::string_view d = chomp(p.data);
    if (p.kind == Packet::Kind::kFlush) {
      if (!report_sideband_) target_ = Target::kDone;
      return;
    }
    if (p.kind != Packet::Kind::kData) return fail("unexpected special packet in report-status");
    if (wire::starts_with(d, "unpack ")) {
      unpack_status_ = wire::status_text(d.substr(7));
      if (unpack_status_ != "ok") failure("unpack " + unpack_status_);
      return;
    }
    if (wire::starts_with(d, "option ")) return;  // report-status-v2: refname, old-oid, new-oid
    bool ok = wire::starts_with(d, "ok ");
    if (!ok && !wire::starts_with(d, "ng ")) return fail("unexpected line in report-status");
    std::string_view rest = d.substr(3);
    std::string_view ref = rest.substr(0, rest.find(' '));
    std::string reason =
        ok ? "" : wire::status_text(rest.substr(std::min(rest.size(), ref.size() + 1)));
    if (!wire::token(ref)) return fail("malformed ref in report-status");
    if (!ok) failure("ng " + std::string(ref) + (reason.empty() ? "" : " " + reason));
    for (auto& u : details_.refs)
      if (u.name == ref && u.status.empty()) {
        u.status = ok ? "ok" : "ng" + (reason.empty() ? "" : " " + reason);
        break;
      }
  }

  // ---- the user's side ----

  size_t parse_user(std::string_view in) {
    size_t used = 0;
    while (error_.empty() && used < in.size()) {
      std::string_view rest = in.substr(used);
      if (user_ == User::kPushPack) {
        std::string e;
        if (!pack_.feed(rest, e)) fail(e);
        return in.size();
      }
      if (user_ == User::kUploadDone || user_ == User::kPushDone || user_ == User::kArchiveDone) {
        fail("data after the end of the request");
        break;
      }
      Packet p;
      size_t n = 0;
      std::string e;
      Read r = read_packet(rest, p, n, e);
      if (r == Read::kBad) fail(e);
      if (r != Read::kPacket) break;
      user_packet(p);
      used += n;
    }
    return used;
  }

  void want(std::string_view what) {
    ++details_.wants;
    if (details_.wanted.size() < kMaxWanted) details_.wanted.emplace_back(what);
  }

  // v0/v1 fetch lines before the first flush.
  bool fetch_line(std::string_view d, bool first) {
    auto words = castgate::split(d, ' ', false);
    if (words.size() < 2) return false;
    const std::string& w = words[0];
    if (w == "want") {
      if (!wire::object_id(words[1]) || (!first && words.size() != 2)) return false;
      for (size_t i = 2; i < words.size(); ++i) {
        if (!wire::token(words[i])) return false;
        if (words[i] == "side-band" || words[i] == "side-band-64k") sideband_ = true;
      }
      want(words[1]);
      return true;
    }
    if (words.size() != 2) return w == "deepen-since" || w == "deepen-not" || w == "filter";
    if (w == "shallow") return wire::object_id(words[1]);
    return w == "deepen" || w == "deepen-since" || w == "deepen-not" || w == "filter";
  }

  void user_packet(const Packet& p) {
    using K = Packet::Kind;
    std::string_view d = chomp(p.data);
    switch (user_) {
      case User::kStart:
        if (command_.service == GitService::kUploadArchive) {
          user_ = User::kArchiveArgs;
          return user_packet(p);
        }
        if (command_.service == GitService::kReceivePack) {
          user_ = User::kPushCommands;
          return user_packet(p);
        }
        if (p.kind == K::kData && wire::starts_with(d, "command=")) {
          user_ = User::kV2Command;
          return user_packet(p);
        }
        if (p.kind == K::kFlush) {  // nothing wanted: the user is up to date
          user_ = User::kUploadDone;
          return;
        }
        if (p.kind != K::kData || !wire::starts_with(d, "want ") || !fetch_line(d, true))
          return fail("the request does not start with want");
        user_ = User::kWants;
        return;
      case User::kWants:
        if (p.kind == K::kFlush) {
          user_ = User::kHaves;
          return;
        }
        if (p.kind != K::kData || !fetch_line(d, false)) return fail("unexpected line among wants");
        return;
      case User::kHaves:
        if (p.kind == K::kFlush) return;  // end of a negotiation round
        if (p.kind != K::kData) return fail("unexpected special packet among haves");
        if (d == "done") {
          user_ = User::kUploadDone;
          return;
        }
        if (wire::starts_with(d, "have ") && wire::object_id(d.substr(5))) {
          ++details_.haves;
          return;
        }
        return fail("unexpected line among haves");
      case User::kV2Command:
        if (p.kind == K::kFlush) return;  // the end of the session
        if (p.kind != K::kData || !wire::starts_with(d, "command="))
          return fail("expected command=");
        if (d == "command=ls-refs") {
          v2_commands_.push_back(V2Command::kLsRefs);
        } else if (d == "command=fetch") {
          v2_commands_.push_back(V2Command::kFetch);
        } else if (d == "command=object-info") {
          v2_commands_.push_back(V2Command::kObjectInfo);
        } else {
          return fail("unknown v2 command");
        }
        user_ = User::kV2Caps;
        return;
      case User::kV2Caps:
        if (p.kind == K::kDelim) {
          user_ = User::kV2Args;
          return;
        }
        if (p.kind == K::kFlush) {
          user_ = User::kV2Command;
          return;
        }
        if (p.kind != K::kData || !wire::printable(d)) return fail("malformed v2 capability");
        return;
      case User::kV2Args:
        if (p.kind == K::kFlush) {
          user_ = User::kV2Command;
          return;
        }
        if (p.kind != K::kData || d.empty()) return fail("malformed v2 argument");
        if (v2_commands_.empty() || v2_commands_.back() != V2Command::kFetch) return;
        if (wire::starts_with(d, "want ")) {
          if (!wire::object_id(d.substr(5))) return fail("malformed want");
          return want(d.substr(5));
        }
        if (wire::starts_with(d, "want-ref ")) {
          if (!wire::token(d.substr(9))) return fail("malformed want-ref");
          return want(d.substr(9));
        }
        if (wire::starts_with(d, "have ")) {
          if (!wire::object_id(d.substr(5))) return fail("malformed have");
          ++details_.haves;
        }
        return;
      case User::kPushCommands:
        if (p.kind == K::kFlush) {
          push_commands_done_ = true;
          if (push_options_) {
            user_ = User::kPushOptions;
          } else {
            after_push_commands();
          }
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet among push commands");
        return push_command(p.data);
      case User::kPushOptions:
        if (p.kind == K::kFlush) return after_push_commands();
        if (p.kind != K::kData) return fail("unexpected special packet among push options");
        return;
      case User::kArchiveArgs:
        if (p.kind == K::kFlush) {
          user_ = User::kArchiveDone;
          return;
        }
        if (p.kind != K::kData || !wire::starts_with(d, "argument "))
          return fail("expected argument");
        return;
      case User::kUploadDone:
      case User::kPushPack:
      case User::kPushDone:
      case User::kArchiveDone:
        return;
    }
  }

  void after_push_commands() {
    // The pack follows, raw, unless every command deletes a ref.
    user_ = any_new_object_ ? User::kPushPack : User::kPushDone;
  }

  void push_command(std::string_view line) {
    line = chomp(line);
    if (wire::starts_with(line, "shallow ")) {
      if (!wire::object_id(line.substr(8))) fail("malformed shallow line");
      return;
    }
    std::string_view caps;
    bool first = details_.ref_updates == 0;
    if (auto nul = line.find('\0'); nul != std::string_view::npos) {
      if (!first) return fail("capabilities after the first push command");
      caps = line.substr(nul + 1);
      line = line.substr(0, nul);
    }
    auto words = castgate::split(line, ' ', false);
    if (words.size() != 3 || !wire::object_id(words[0]) || words[1].size() != words[0].size() ||
        !wire::object_id(words[1]) || !wire::token(words[2]))
      return fail("malformed push command");
    for (auto& cap : castgate::split(caps, ' ', false)) {
      if (cap.empty()) continue;
      if (!wire::token(cap)) return fail("malformed capability");
      if (cap == "side-band-64k" || cap == "side-band") report_sideband_ = true;
      if (cap == "push-options") push_options_ = true;
    }
    if (!wire::zero_id(words[1])) any_new_object_ = true;
    ++details_.ref_updates;
    if (details_.refs.size() < kMaxRefs)
      details_.refs.push_back({words[2], words[0], words[1], ""});
  }

  void end() override {
    // The target unpacked what the user sent: the pack was whole, and must hold what its header
    // announced.
    if (unpack_status_ == "ok" && pack_.started()) pack_complete();
  }

  // ---- the record ----

  void failure(std::string why) {
    ok_ = false;
    if (status_.empty()) status_ = std::move(why);
  }

  FileOperation operation() const override {
    FileOperation o;
    o.protocol = "git";
    o.action = "transfer";
    o.path = command_.repository;
    o.direction = command_.service == GitService::kReceivePack ? "upload" : "download";
    o.bytes_written = bytes_[kUser];
    o.bytes_read = bytes_[kTarget];
    return o;
  }

  FileOperation summary() override {
    FileOperation o = operation();
    GitTransfer g = details_;
    g.version = details_.version;
    g.pack_objects = pack_.objects();
    g.pack_bytes = command_.service == GitService::kUploadArchive ? archive_bytes_ : pack_.bytes();
    o.ok = ok_;
    o.status = status_;
    if (ok_ && !advertised_ && command_.service != GitService::kUploadArchive) {
      o.ok = false;
      o.status =
          bytes_[kTarget] == 0 ? "the target sent no git data" : "no complete ref advertisement";
    } else if (ok_ && command_.service == GitService::kReceivePack && g.ref_updates > 0 &&
               unpack_status_.empty()) {
      o.ok = false;
      o.status = "the target reported no result";
    } else if (ok_ && response_expected() && target_ != Target::kDone &&
               target_ != Target::kV2Idle && target_ != Target::kRawPack) {
      o.ok = false;
      o.status = "the response ended early";
    } else if (ok_ && (target_ == Target::kRawPack || user_ == User::kPushPack)) {
      std::string e;
      if (!pack_.complete(e)) {
        o.ok = false;
        o.status = e;
      }
    }
    o.git = std::move(g);
    return o;
  }

  // Whether the user asked for something the target had to answer with data.
  bool response_expected() const {
    switch (command_.service) {
      case GitService::kUploadPack:
        return details_.wants > 0;
      case GitService::kUploadArchive:
        return user_ == User::kArchiveDone;
      case GitService::kReceivePack:
        return false;  // see unpack_status_
    }
    return false;
  }

  GitCommand command_;
  GitTransfer details_;
  Target target_ = Target::kAdvertisement;
  User user_ = User::kStart;
  bool seen_first_line_ = false;
  bool advertised_ = false;
  bool sideband_ = false;         // upload-pack's pack in side-band packets
  bool report_sideband_ = false;  // receive-pack's report in side-band packets
  bool push_options_ = false;
  bool push_commands_done_ = false;
  bool any_new_object_ = false;
  std::deque<V2Command> v2_commands_;  // v2 commands not yet answered (at most a few)
  std::string report_stream_;
  std::string unpack_status_;
  PackCounter pack_;
  uint64_t archive_bytes_ = 0;
  bool ok_ = true;
  std::string status_;
};

}  // namespace git_detail

std::unique_ptr<TransferFollower> make_git_follower(GitCommand command) {
  return std::make_unique<git_detail::GitFollower>(std::move(command));
}

}  // namespace castgate::asciicast
