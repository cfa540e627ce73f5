#include "asciicast/rsync_follower.h"

#include <algorithm>

#include "asciicast/wire_text.h"

namespace castgate::asciicast {
namespace rsync_detail {

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
          uint32_t v = wire::little_endian32(rest);
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
            if (c != ' ' && !wire::token(std::string_view(&c, 1))) {
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
            uint32_t header = wire::little_endian32(rest);
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
          } else if (d.message.size() < wire::kMaxText) {
            d.message.append(rest.substr(0, std::min(take, wire::kMaxText - d.message.size())));
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
    if (error_message && status_.empty()) status_ = wire::status_text(d.message);
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

}  // namespace rsync_detail

std::unique_ptr<TransferFollower> make_rsync_follower(RsyncCommand command) {
  return std::make_unique<rsync_detail::RsyncFollower>(std::move(command));
}

}  // namespace castgate::asciicast
