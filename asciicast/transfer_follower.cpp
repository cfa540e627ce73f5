#include "asciicast/transfer_follower.h"

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace castgate::asciicast {
namespace {

constexpr size_t kMaxPktLine = 65520;  // git's LARGE_PACKET_MAX, the 4 length digits included
constexpr size_t kMaxWanted = 8;       // wanted ids kept for the record
constexpr size_t kMaxRefs = 8;         // ref updates kept for the record (lines stay short)
constexpr size_t kMaxText = 512;       // error or status text kept for the record
// The least a packed object can take: a type/size byte and a zlib stream (2 header bytes, an
// empty final block, the Adler-32 checksum). A pack header announcing more objects than its bytes
// can hold lies.
constexpr uint64_t kMinObjectBytes = 8;
constexpr uint64_t kPackTrailerBytes = 20;  // SHA-1 of the pack (SHA-256 ones are longer)

// Characters a POSIX shell gives a meaning beyond a plain word, globs included (git and rsync
// never send them unquoted). Unlike parse_scp_command's rule, '=' may stand in rsync's long
// options: an assignment only counts before the command name, which must be "rsync" or "git-...".
bool shell_syntax(char c) {
  switch (c) {
    case ';':
    case '&':
    case '|':
    case '$':
    case '`':
    case '<':
    case '>':
    case '(':
    case ')':
    case '{':
    case '}':
    case '\'':
    case '"':
    case '\\':
    case '#':
    case '!':
    case '*':
    case '?':
    case '[':
    case ']':
      return true;
    default:
      return static_cast<unsigned char>(c) < 0x21 || c == 0x7f;
  }
}

bool plain_word(std::string_view w) {
  return !w.empty() && std::none_of(w.begin(), w.end(), shell_syntax);
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A SHA-1 or SHA-256 object id as git writes it.
bool object_id(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) && is_hex(s);
}

bool zero_id(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// Printable ASCII or UTF-8, no spaces or control characters: ref names, capabilities.
bool token(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// Printable text, spaces allowed: v2 capability lines ("fetch=shallow wait-for-done").
bool printable(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Text from the peer for a status: printable, bounded, trailing newline dropped.
std::string status_text(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  std::string out(s.substr(0, kMaxText));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

uint32_t big_endian32(std::string_view b) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[3]));
}

uint32_t little_endian32(std::string_view b) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[3])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[0]));
}

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
        uint32_t version = big_endian32(std::string_view(header_).substr(4));
        if (version != 2 && version != 3) {
          error = "pack version " + std::to_string(version) + " is not 2 or 3";
          return false;
        }
        objects_ = big_endian32(std::string_view(header_).substr(8));
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
      if (target_ == Target::kNegotiation && !sideband_ && starts_with("PACK", rest.substr(0, 4))) {
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
    if (starts_with(line, "shallow ")) {
      if (!object_id(line.substr(8))) fail("malformed shallow line in the advertisement");
      return;
    }
    std::string_view caps;
    if (auto nul = line.find('\0'); nul != std::string_view::npos) {
      if (!first) return fail("capabilities after the first advertised ref");
      caps = line.substr(nul + 1);
      line = line.substr(0, nul);
    }
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || !object_id(line.substr(0, sp)) ||
        !token(line.substr(sp + 1)))
      return fail("malformed ref advertisement line");
    for (auto& cap : split(caps, ' ', false))
      if (!cap.empty() && !token(cap)) return fail("malformed capability");
    // An empty repository advertises "capabilities^{}" with a zero id: no ref.
    if (line.substr(sp + 1) != "capabilities^{}") ++details_.advertised_refs;
  }

  void target_packet(const Packet& p) {
    using K = Packet::Kind;
    std::string_view d = p.data;
    if (p.kind == K::kData && starts_with(d, "ERR ")) {
      failure(status_text(d.substr(4)));
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
        if (p.kind != K::kData || !printable(chomp(d))) return fail("malformed v2 capability");
        return;
      case Target::kV2Idle: {
        V2Command c = v2_commands_.front();
        v2_commands_.pop_front();
        target_ = c == V2Command::kFetch ? Target::kV2Fetch : Target::kV2LsRefs;
        return target_packet(p);
      }
      case Target::kV2LsRefs:
        // ls-refs: "<oid> <ref>[ attributes]" or "unborn <ref>..."; object-info: any lines.
        if (p.kind == K::kFlush) {
          target_ = Target::kV2Idle;
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet in a v2 response");
        {
          auto words = split(chomp(d), ' ', false);
          if (words.size() < 2 || !token(words[1]) ||
              (!object_id(words[0]) && words[0] != "unborn" && !is_hex(words[0])))
            return fail("malformed v2 response line");
          if (object_id(words[0]) || words[0] == "unborn") ++details_.advertised_refs;
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
            chomp(d) == "ready" || starts_with(d, "ACK ") || starts_with(d, "shallow ") ||
            starts_with(d, "unshallow ") || (d.size() > 41 && object_id(d.substr(0, 40))) ||
            (d.size() > 65 && object_id(d.substr(0, 64))))
          return;
        return fail("unexpected line in a fetch response");
      case Target::kV2Packfile:
        if (p.kind == K::kFlush) {
          pack_complete();
          target_ = Target::kV2Idle;
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet in a packfile section");
        return side_band(d);
      case Target::kNegotiation:
        if (p.kind == K::kFlush) return;  // after shallow/unshallow lines
        if (p.kind != K::kData) return fail("unexpected special packet in negotiation");
        if (sideband_ && !d.empty() && d[0] >= 1 && d[0] <= 3) {
          target_ = Target::kSideBand;
          return target_packet(p);
        }
        if (chomp(d) == "NAK" || starts_with(d, "ACK ") || starts_with(d, "shallow ") ||
            starts_with(d, "unshallow "))
          return;
        return fail("unexpected line in negotiation");
      case Target::kSideBand:
        if (p.kind == K::kFlush) {
          pack_complete();
          target_ = Target::kDone;
          return;
        }
        if (p.kind != K::kData) return fail("unexpected special packet in side-band data");
        return side_band(d);
      case Target::kReport:
        if (report_sideband_) {
          if (p.kind == K::kFlush) {
            target_ = Target::kDone;
            return;
          }
          if (p.kind != K::kData || d.empty()) return fail("malformed side-band packet");
          if (d[0] == 2) return;  // progress, hooks' messages
          if (d[0] == 3) return failure(status_text(d.substr(1)));
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
        if (starts_with(d, "NACK ")) {
          failure(status_text(d.substr(5)));
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
        return failure(status_text(d.substr(1)));
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
    if (starts_with(d, "unpack ")) {
      unpack_status_ = status_text(d.substr(7));
      if (unpack_status_ != "ok") failure("unpack " + unpack_status_);
      return;
    }
    if (starts_with(d, "option ")) return;  // report-status-v2: refname, old-oid, new-oid
    bool ok = starts_with(d, "ok ");
    if (!ok && !starts_with(d, "ng ")) return fail("unexpected line in report-status");
    std::string_view rest = d.substr(3);
    std::string_view ref = rest.substr(0, rest.find(' '));
    std::string reason = ok ? "" : status_text(rest.substr(std::min(rest.size(), ref.size() + 1)));
    if (!token(ref)) return fail("malformed ref in report-status");
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
    auto words = split(d, ' ', false);
    if (words.size() < 2) return false;
    const std::string& w = words[0];
    if (w == "want") {
      if (!object_id(words[1]) || (!first && words.size() != 2)) return false;
      for (size_t i = 2; i < words.size(); ++i) {
        if (!token(words[i])) return false;
        if (words[i] == "side-band" || words[i] == "side-band-64k") sideband_ = true;
      }
      want(words[1]);
      return true;
    }
    if (words.size() != 2) return w == "deepen-since" || w == "deepen-not" || w == "filter";
    if (w == "shallow") return object_id(words[1]);
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
        if (p.kind == K::kData && starts_with(d, "command=")) {
          user_ = User::kV2Command;
          return user_packet(p);
        }
        if (p.kind == K::kFlush) {  // nothing wanted: the user is up to date
          user_ = User::kUploadDone;
          return;
        }
        if (p.kind != K::kData || !starts_with(d, "want ") || !fetch_line(d, true))
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
        if (starts_with(d, "have ") && object_id(d.substr(5))) {
          ++details_.haves;
          return;
        }
        return fail("unexpected line among haves");
      case User::kV2Command:
        if (p.kind == K::kFlush) return;  // the end of the session
        if (p.kind != K::kData || !starts_with(d, "command=")) return fail("expected command=");
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
        if (p.kind != K::kData || !printable(d)) return fail("malformed v2 capability");
        return;
      case User::kV2Args:
        if (p.kind == K::kFlush) {
          user_ = User::kV2Command;
          return;
        }
        if (p.kind != K::kData || d.empty()) return fail("malformed v2 argument");
        if (v2_commands_.empty() || v2_commands_.back() != V2Command::kFetch) return;
        if (starts_with(d, "want ")) {
          if (!object_id(d.substr(5))) return fail("malformed want");
          return want(d.substr(5));
        }
        if (starts_with(d, "want-ref ")) {
          if (!token(d.substr(9))) return fail("malformed want-ref");
          return want(d.substr(9));
        }
        if (starts_with(d, "have ")) {
          if (!object_id(d.substr(5))) return fail("malformed have");
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
        if (p.kind != K::kData || !starts_with(d, "argument ")) return fail("expected argument");
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
    if (starts_with(line, "shallow ")) {
      if (!object_id(line.substr(8))) fail("malformed shallow line");
      return;
    }
    std::string_view caps;
    bool first = details_.ref_updates == 0;
    if (auto nul = line.find('\0'); nul != std::string_view::npos) {
      if (!first) return fail("capabilities after the first push command");
      caps = line.substr(nul + 1);
      line = line.substr(0, nul);
    }
    auto words = split(line, ' ', false);
    if (words.size() != 3 || !object_id(words[0]) || words[1].size() != words[0].size() ||
        !object_id(words[1]) || !token(words[2]))
      return fail("malformed push command");
    for (auto& cap : split(caps, ' ', false)) {
      if (cap.empty()) continue;
      if (!token(cap)) return fail("malformed capability");
      if (cap == "side-band-64k" || cap == "side-band") report_sideband_ = true;
      if (cap == "push-options") push_options_ = true;
    }
    if (!zero_id(words[1])) any_new_object_ = true;
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

// ---- rsync -----------------------------------------------------------------------------------

class RsyncFollower final : public TransferFollower {
 public:
  explicit RsyncFollower(RsyncCommand command)
      : TransferFollower("rsync"), command_(std::move(command)) {
    negotiate_strings_ = command_.client_info.find('v') != std::string::npos;
    strings_ = (command_.checksum_choice ? 0 : 1) +
               (command_.compress && !command_.compress_choice ? 1 : 0);
  }

 private:
  struct Direction {
    enum class Step {
      kVersion,
      kCompatFlags,
      kStrings,
      kSeed,
      kFrames,
      kRaw
    } step = Step::kVersion;
    int version = 0;
    int strings_left = 0;
    uint32_t frame_left = 0;  // payload bytes of the current frame still to come
    int frame_code = 0;
    std::string message;  // an error message frame's text (bounded)
  };

  void fail(std::string why) {
    if (error_.empty()) error_ = "not rsync: " + why;
  }

  int negotiated() const { return std::min(dir_[kUser].version, dir_[kTarget].version); }

  size_t parse(Side side, std::string_view in) override {
    Direction& d = dir_[side];
    size_t used = 0;
    using S = Direction::Step;
    while (error_.empty() && used < in.size()) {
      std::string_view rest = in.substr(used);
      switch (d.step) {
        case S::kVersion: {
          if (rest.size() < 4) return used;
          uint32_t v = little_endian32(rest);
          if (v < 20 || v > 40) {
            fail("protocol version " + std::to_string(v) + " is not between 20 and 40");
            return used;
          }
          d.version = static_cast<int>(v);
          used += 4;
          d.step = S::kCompatFlags;
          break;
        }
        case S::kCompatFlags: {
          int other = dir_[1 - side].version;
          if (other == 0) return used;  // the other side's version decides what follows
          if (negotiated() < 30) {
            d.step = side == kTarget ? S::kSeed : S::kRaw;
            break;
          }
          if (side == kUser) {
            // The client answers the server's flags with its negotiation strings.
            if (dir_[kTarget].step <= S::kCompatFlags) return used;
            d.strings_left = do_strings_ ? strings_ : 0;
            d.step = S::kStrings;
            break;
          }
          // rsync's varint: the first byte's high bits count the bytes that follow (0xc0-0xdf:
          // 2, 0xe0-0xef: 3, 0xf0-0xf7: 4); those hold the low bytes, the first one the rest.
          auto first = static_cast<unsigned char>(rest[0]);
          size_t extra = first < 0x80   ? 0
                         : first < 0xc0 ? 1
                         : first < 0xe0 ? 2
                         : first < 0xf0 ? 3
                         : first < 0xf8 ? 4
                                        : 5;
          if (extra > 4) {
            fail("malformed compatibility flags");
            return used;
          }
          if (rest.size() < 1 + extra) return used;
          uint64_t flags = uint64_t{first & ((1u << (8 - extra)) - 1)} << (8 * extra);
          for (size_t i = 0; i < extra; ++i)
            flags |= uint64_t{static_cast<unsigned char>(rest[1 + i])} << (8 * i);
          // CF_VARINT_FLIST_FLAGS: the server sets it exactly when the client's info says 'v',
          // and then both sides send their negotiation strings.
          do_strings_ = (flags & 0x80) != 0;
          if (do_strings_ != negotiate_strings_) {
            fail("compatibility flags do not match the client's options");
            return used;
          }
          used += 1 + extra;
          d.strings_left = do_strings_ ? strings_ : 0;
          d.step = S::kStrings;
          break;
        }
        case S::kStrings: {
          if (d.strings_left == 0) {
            d.step = side == kTarget ? S::kSeed : S::kFrames;
            break;
          }
          auto b0 = static_cast<unsigned char>(rest[0]);
          size_t head = b0 & 0x80 ? 2 : 1;
          if (rest.size() < head) return used;
          size_t len = b0 & 0x80 ? (b0 & 0x7f) * 256u + static_cast<unsigned char>(rest[1]) : b0;
          if (len > 1024) {
            fail("negotiation string too long");
            return used;
          }
          if (rest.size() < head + len) return used;
          for (char c : rest.substr(head, len))
            if (c != ' ' && !token(std::string_view(&c, 1))) {
              fail("malformed negotiation string");
              return used;
            }
          used += head + len;
          --d.strings_left;
          break;
        }
        case S::kSeed:
          if (rest.size() < 4) return used;
          used += 4;
          d.step = negotiated() >= 23 ? S::kFrames : S::kRaw;
          break;
        case S::kFrames: {
          if (d.frame_left == 0) {
            if (rest.size() < 4) return used;
            uint32_t header = little_endian32(rest);
            int tag = static_cast<int>(header >> 24);
            if (tag < 7 || !known_message(tag - 7)) {
              fail("multiplexed frame with unknown tag " + std::to_string(tag));
              return used;
            }
            d.frame_code = tag - 7;
            d.frame_left = header & 0xffffff;
            d.message.clear();
            used += 4;
            if (d.frame_left == 0) frame_done(d);
            break;
          }
          size_t take = std::min<size_t>(d.frame_left, rest.size());
          if (d.frame_code == 0) {
            data_bytes_ += take;
          } else if (d.message.size() < kMaxText) {
            d.message.append(rest.substr(0, std::min(take, kMaxText - d.message.size())));
          }
          d.frame_left -= static_cast<uint32_t>(take);
          used += take;
          if (d.frame_left == 0) frame_done(d);
          break;
        }
        case S::kRaw:
          data_bytes_ += rest.size();
          return in.size();
      }
    }
    return used;
  }

  static bool known_message(int code) {
    switch (code) {
      case 0:    // DATA
      case 1:    // ERROR_XFER
      case 2:    // INFO
      case 3:    // ERROR
      case 4:    // WARNING
      case 5:    // ERROR_SOCKET
      case 6:    // LOG
      case 7:    // CLIENT
      case 8:    // ERROR_UTF8
      case 9:    // REDO
      case 10:   // STATS
      case 22:   // IO_ERROR
      case 33:   // IO_TIMEOUT
      case 42:   // NOOP
      case 86:   // ERROR_EXIT
      case 100:  // SUCCESS
      case 101:  // DELETED
      case 102:  // NO_SEND
        return true;
      default:
        return false;
    }
  }

  void frame_done(Direction& d) {
    bool error_message =
        d.frame_code == 1 || d.frame_code == 3 || d.frame_code == 5 || d.frame_code == 8;
    if (error_message && status_.empty()) status_ = status_text(d.message);
    if (error_message || d.frame_code == 86 || d.frame_code == 22) ok_ = false;
    if (d.frame_code == 86 && status_.empty()) status_ = "rsync exited with an error";
    if (d.frame_code == 22 && status_.empty()) status_ = "the sending side had an I/O error";
    d.message.clear();
  }

  FileOperation operation() const override {
    FileOperation o;
    o.protocol = "rsync";
    o.action = "transfer";
    o.path = command_.paths.empty() ? "" : command_.paths.front();
    o.direction = command_.sender ? "download" : "upload";
    o.bytes_written = bytes_[kUser];
    o.bytes_read = bytes_[kTarget];
    return o;
  }

  FileOperation summary() override {
    FileOperation o = operation();
    o.ok = ok_;
    o.status = status_;
    if (ok_ && dir_[kTarget].step < Direction::Step::kFrames) {
      o.ok = false;
      o.status = bytes_[kTarget] == 0 ? "the target sent no rsync data"
                                      : "the rsync handshake did not complete";
    }
    RsyncTransfer r;
    r.version = dir_[kUser].version && dir_[kTarget].version ? negotiated() : 0;
    r.options = command_.options;
    r.paths = command_.paths;
    o.rsync = std::move(r);
    return o;
  }

  RsyncCommand command_;
  bool negotiate_strings_ = false;  // the client's info says 'v'
  bool do_strings_ = false;
  int strings_ = 0;  // negotiation strings each side sends
  Direction dir_[2];
  uint64_t data_bytes_ = 0;
  bool ok_ = true;
  std::string status_;
};

// Git's quoting of a path for the remote shell (sq_quote_buf): the whole path in single quotes,
// each quote inside as '\'' (and each "!" as '\!'). Returns false for anything else.
bool git_unquote(std::string_view arg, std::string& out) {
  if (arg.empty() || arg[0] != '\'') {
    if (!plain_word(arg)) return false;
    out = arg;
    return true;
  }
  out.clear();
  size_t i = 1;
  for (;;) {
    size_t q = arg.find('\'', i);
    if (q == std::string_view::npos) return false;
    out.append(arg.substr(i, q - i));
    i = q + 1;
    if (i == arg.size()) break;
    // Outside the quotes only an escaped quote or "!" may stand, then the quotes open again.
    if (arg.size() - i < 3 || arg[i] != '\\' || (arg[i + 1] != '\'' && arg[i + 1] != '!') ||
        arg[i + 2] != '\'')
      return false;
    out += arg[i + 1];
    i += 3;
  }
  if (out.empty()) return false;
  for (char c : out)
    if (c == '\0' || c == '\n' || c == '\r') return false;
  return true;
}

}  // namespace

std::string_view to_string(GitService service) {
  switch (service) {
    case GitService::kUploadPack:
      return "upload-pack";
    case GitService::kReceivePack:
      return "receive-pack";
    case GitService::kUploadArchive:
      return "upload-archive";
  }
  return "upload-pack";
}

std::optional<GitCommand> parse_git_command(std::string_view exec) {
  std::string_view program, rest;
  auto sp = exec.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  program = exec.substr(0, sp);
  rest = exec.substr(sp + 1);
  if (program == "git") {  // "git upload-pack 'path'"
    sp = rest.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    program = rest.substr(0, sp);
    rest = rest.substr(sp + 1);
  } else if (starts_with(program, "git-")) {
    program.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  GitCommand c;
  if (program == "upload-pack") {
    c.service = GitService::kUploadPack;
  } else if (program == "receive-pack") {
    c.service = GitService::kReceivePack;
  } else if (program == "upload-archive") {
    c.service = GitService::kUploadArchive;
  } else {
    return std::nullopt;
  }
  if (!git_unquote(rest, c.repository)) return std::nullopt;
  return c;
}

std::optional<RsyncCommand> parse_rsync_command(std::string_view exec) {
  auto words = split(exec, ' ', false);
  if (words.size() < 4 || words[0] != "rsync" || words[1] != "--server") return std::nullopt;
  RsyncCommand c;
  size_t i = 2;
  if (words[i] == "--sender") {
    c.sender = true;
    ++i;
  }
  bool end_of_options = false;
  for (; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!plain_word(w)) return std::nullopt;
    if (w == ".") {
      end_of_options = true;
      ++i;
      break;
    }
    if (w.size() < 2 || w[0] != '-') return std::nullopt;
    if (w == "--daemon" || w == "--server" || w == "--sender") return std::nullopt;
    c.options += (c.options.empty() ? "" : " ") + w;
    if (w[1] == '-') {
      std::string_view name = std::string_view(w).substr(2, w.find('=') - 2);
      if (name.empty()) return std::nullopt;
      for (char ch : name)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
          return std::nullopt;
      if (name == "compress" || name == "new-compress" || name == "old-compress") c.compress = true;
      if (name == "checksum-choice" || name == "cc") c.checksum_choice = true;
      if (name == "compress-choice" || name == "zc") c.compress_choice = true;
      continue;
    }
    for (size_t k = 1; k < w.size(); ++k) {
      char f = w[k];
      if (f == 'e') {  // the client's info: the rest of the cluster
        c.client_info = w.substr(k + 1);
        break;
      }
      if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z') || (f >= '0' && f <= '9')))
        return std::nullopt;
      if (f == 'z') c.compress = true;
    }
  }
  if (!end_of_options || i >= words.size()) return std::nullopt;
  for (; i < words.size(); ++i) {
    if (!plain_word(words[i])) return std::nullopt;
    c.paths.push_back(words[i]);
  }
  return c;
}

void TransferFollower::from_user(std::string_view bytes, std::vector<FileOperation>& out) {
  feed(kUser, bytes, out);
}

void TransferFollower::from_target(std::string_view bytes, std::vector<FileOperation>& out) {
  feed(kTarget, bytes, out);
}

bool TransferFollower::consume(Side side, std::string_view bytes) {
  std::string& p = pending_[side];
  bool progress = false;
  while (error_.empty()) {
    if (p.empty()) {
      size_t n = parse(side, bytes);
      progress |= n > 0;
      bytes.remove_prefix(n);
      if (bytes.size() > kMaxPending) {
        error_ = protocol_ + ": more than " + std::to_string(kMaxPending) +
                 " bytes held waiting (an incomplete packet, or the other side)";
        return progress;
      }
      p.assign(bytes);
      return progress;
    }
    size_t take = std::min(bytes.size(), kMaxPending - p.size());
    p.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    size_t n = parse(side, p);
    progress |= n > 0;
    p.erase(0, n);
    if (bytes.empty()) return progress;
    if (n == 0) {
      error_ = protocol_ + ": more than " + std::to_string(kMaxPending) +
               " bytes held waiting (an incomplete packet, or the other side)";
      return progress;
    }
  }
  return progress;
}

void TransferFollower::feed(Side side, std::string_view bytes, std::vector<FileOperation>& out) {
  bytes_[side] += bytes.size();
  if (done_ || !error_.empty()) return;
  consume(side, bytes);
  // Bytes one side held back may wait for what this side has just said; and the other way round.
  for (int round = 0; round < 4 && error_.empty(); ++round) {
    bool moved = false;
    for (Side s : {kUser, kTarget})
      if (!pending_[s].empty()) moved |= consume(s, {});
    if (!moved) break;
  }
  if (!error_.empty()) {
    pending_[0].clear();
    pending_[0].shrink_to_fit();
    pending_[1].clear();
    pending_[1].shrink_to_fit();
    FileOperation o = operation();
    o.action = "error";
    o.ok = false;
    o.status = error_;
    out.push_back(std::move(o));
  }
}

void TransferFollower::finish(std::vector<FileOperation>& out) {
  if (done_) return;
  done_ = true;
  if (!error_.empty()) return;
  end();
  if (error_.empty()) return out.push_back(summary());
  FileOperation o = operation();
  o.action = "error";
  o.ok = false;
  o.status = error_;
  out.push_back(std::move(o));
}

std::unique_ptr<TransferFollower> make_transfer_follower(std::string_view exec) {
  if (auto git = parse_git_command(exec)) return std::make_unique<GitFollower>(std::move(*git));
  if (auto rsync = parse_rsync_command(exec))
    return std::make_unique<RsyncFollower>(std::move(*rsync));
  return nullptr;
}

void add_transfer_fields(const FileOperation& o, nlohmann::json& castgate) {
  using nlohmann::json;
  if (o.git) {
    const GitTransfer& g = *o.git;
    json j = {{"service", g.service},
              {"version", g.version},
              {"advertised_refs", g.advertised_refs},
              {"pack_bytes", g.pack_bytes}};
    if (g.pack_objects) j["pack_objects"] = *g.pack_objects;
    if (g.service == "upload-pack") {
      j["wants"] = g.wants;
      j["haves"] = g.haves;
      if (!g.wanted.empty()) j["wanted"] = g.wanted;
    }
    if (g.service == "receive-pack") {
      j["ref_updates"] = g.ref_updates;
      json refs = json::array();
      for (const auto& r : g.refs) {
        json ref = {{"name", r.name}, {"old", r.old_id}, {"new", r.new_id}};
        if (!r.status.empty()) ref["status"] = r.status;
        refs.push_back(std::move(ref));
      }
      if (!refs.empty()) j["refs"] = std::move(refs);
    }
    castgate["git"] = std::move(j);
  }
  if (o.rsync) {
    json j = {{"version", o.rsync->version}, {"paths", o.rsync->paths}};
    if (!o.rsync->options.empty()) j["options"] = o.rsync->options;
    castgate["rsync"] = std::move(j);
  }
}

}  // namespace castgate::asciicast
