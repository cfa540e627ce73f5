#include "player/decompressor.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <stdexcept>

#include "player/terminal_text.h"

namespace castgate::player {

const char* to_string(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kNone:
      break;
  }
  return "";
}

Compression compression_of(std::string_view in) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(in[i]); };
  if (in.size() >= 2 && byte(0) == 0x1f && byte(1) == 0x8b) return Compression::kGzip;
  if (in.size() >= 4 && byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f && byte(3) == 0xfd)
    return Compression::kZstd;
  return Compression::kNone;
}

size_t decompressed_limit(size_t compressed) {
  constexpr size_t kGiB = size_t{1} << 30;
  return std::min(16 * kGiB, std::max(kGiB, compressed * 1000));
}

size_t Decompressor::read(char* out, size_t room) {
  if (ended_) return 0;
  size_t n = fill(out, room);
  produced_ += n;
  if (produced_ > limit_)
    throw std::runtime_error(terminal_safe(path_) + " decompresses to more than " +
                             std::to_string(limit_) + " bytes (a decompression bomb?); not read");
  return n;
}

std::string Decompressor::warning() const {
  if (whole_) return {};
  return "castgate-player: " + terminal_safe(path_) + ": the " + to_string(compression_) +
         " data ends early or is followed by other bytes (a truncated or padded file?); reading "
         "the " +
         std::to_string(produced_) + " bytes it holds\n";
}

void Decompressor::invalid(const std::string& why, size_t pending) const {
  throw std::runtime_error(terminal_safe(path_) + ": not valid " + to_string(compression_) +
                           " data (" + why + ") after " + std::to_string(produced_ + pending) +
                           " bytes");
}

namespace {

// isal_inflate's counters are 32-bit: input is handed over a slice at a time, topped up while
// half a slice is left (the input is one mapping, so ISA-L's view of it only grows).
constexpr size_t kSlice = size_t{1} << 30;
// Not one of ISA-L's codes: a member header with FLG's reserved bits set.
constexpr int kReservedFlags = -100;

std::string isal_error(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK:
      return "invalid block";
    case ISAL_INVALID_SYMBOL:
      return "invalid code";
    case ISAL_INVALID_LOOKBACK:
      return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER:
      return "incorrect header check";
    case kReservedFlags:
      return "reserved header flags set";
    case ISAL_UNSUPPORTED_METHOD:
      return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "incorrect data check";
    default:
      return "error " + std::to_string(rc);
  }
}

// ISA-L's inflate: about twice zlib's speed on castgate's logs. Every member is read
// (concatenated gzip files are one valid gzip file). Each member's header is read here into a
// header kept across calls (isal_inflate's own header reading does not resume a header cut by
// the end of its input reliably), then its deflate data and trailer by isal_inflate.
class GzipDecompressor final : public Decompressor {
 public:
  GzipDecompressor(std::string_view in, const std::string& path, size_t limit)
      : Decompressor(Compression::kGzip, path, limit),
        state_(std::make_unique<inflate_state>()),
        left_(in.size()) {
    isal_inflate_init(state_.get());
    state_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
    state_->avail_in = 0;
    new_member();
  }

 private:
  std::unique_ptr<inflate_state> state_;  // 80 KiB: not on the stack
  isal_gzip_header header_{};             // the member header being read
  bool in_header_ = true;
  bool flags_checked_ = false;  // of this member's header
  size_t left_;                 // input not yet handed to ISA-L
  bool members_done_ = false;   // at least one whole member

  void new_member() {
    header_ = isal_gzip_header{};
    isal_gzip_header_init(&header_);
    header_.flags = 0;  // not set by isal_gzip_header_init (ISA-L 2.30)
    in_header_ = true;
    flags_checked_ = false;
  }

  void top_up() {
    inflate_state& s = *state_;
    if (left_ == 0 || s.avail_in >= kSlice / 2) return;
    auto take = static_cast<uint32_t>(std::min(left_, kSlice - s.avail_in));
    s.avail_in += take;
    left_ -= take;
  }

  // Reads (more of) a member header: true once it is whole.
  bool read_header(size_t produced) {
    inflate_state& s = *state_;
    // FLG's reserved bits (RFC 1952: must be zero; gzip(1) refuses them), checked before ISA-L
    // reads the header (fewer than 4 bytes left: the file is cut short anyway).
    if (!flags_checked_ && s.avail_in >= 4) {
      flags_checked_ = true;
      if ((s.next_in[3] & 0xe0) != 0) return fail(kReservedFlags, produced);
    }
    int rc = isal_read_gzip_header(&s, &header_);
    if (rc == ISAL_END_INPUT) return false;
    if (rc != ISAL_DECOMP_OK) return fail(rc, produced);
    in_header_ = false;
    s.crc_flag = ISAL_GZIP_NO_HDR_VER;
    return true;
  }

  // Data that is not valid: after whole members, padding or junk (gzip(1) ignores trailing
  // zeros), kept apart; otherwise an error.
  bool fail(int rc, size_t produced) {
    if (!members_done_) invalid(isal_error(rc), produced);
    failed_ = true;
    return false;
  }
  bool failed_ = false;

  size_t fill(char* out, size_t room) override {
    inflate_state& s = *state_;
    s.next_out = reinterpret_cast<uint8_t*>(out);
    s.avail_out = static_cast<uint32_t>(std::min(room, kSlice));
    const uint32_t offered = s.avail_out;
    auto produced = [&] { return size_t{offered - s.avail_out}; };
    for (;;) {
      top_up();
      const uint32_t avail_in = s.avail_in, avail_out = s.avail_out;
      if (in_header_) {
        if (!read_header(produced())) {
          if (failed_) return end(false, produced());
          if (s.avail_in == 0 && left_ == 0) return end(false, produced());  // cut short
          if (s.avail_in == avail_in) invalid("no progress", produced());
        }
        continue;
      }
      int rc = isal_inflate(&s);
      if (rc != ISAL_DECOMP_OK) {
        fail(rc, produced());
        return end(false, produced());
      }
      if (s.block_state == ISAL_BLOCK_FINISH) {
        members_done_ = true;
        if (s.avail_in == 0 && left_ == 0) return end(true, produced());
        // The next member: ISA-L has given back what it read ahead of this one's end.
        uint8_t* next = s.next_in;
        uint32_t avail = s.avail_in;
        isal_inflate_reset(&s);
        s.next_in = next;
        s.avail_in = avail;
        new_member();
        continue;
      }
      if (s.avail_out == 0) break;
      if (s.avail_in == 0 && left_ == 0) return end(false, produced());  // cut short
      if (s.avail_in == avail_in && s.avail_out == avail_out) invalid("no progress", produced());
    }
    return produced();
  }
};

class ZstdDecompressor final : public Decompressor {
 public:
  ZstdDecompressor(std::string_view in, const std::string& path, size_t limit)
      : Decompressor(Compression::kZstd, path, limit),
        ctx_(ZSTD_createDCtx(), &ZSTD_freeDCtx),
        input_{in.data(), in.size(), 0} {
    if (!ctx_) throw std::runtime_error("zstd: out of memory");
  }

 private:
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx_;
  ZSTD_inBuffer input_;
  size_t last_ = 0;  // 0 once a frame is whole and flushed
  bool frame_done_ = false;

  size_t fill(char* out, size_t room) override {
    ZSTD_outBuffer output{out, room, 0};
    while (output.pos == 0) {
      if (input_.pos < input_.size) {
        last_ = ZSTD_decompressStream(ctx_.get(), &output, &input_);
        if (ZSTD_isError(last_)) {
          if (frame_done_) return end(false, output.pos);  // junk after whole frames
          invalid(ZSTD_getErrorName(last_), output.pos);
        }
        if (last_ == 0) frame_done_ = true;
        continue;
      }
      // What the last frame still holds; no output at all means it is cut short.
      if (last_ == 0) return end(true, output.pos);
      last_ = ZSTD_decompressStream(ctx_.get(), &output, &input_);
      if (ZSTD_isError(last_) || output.pos == 0) return end(false, output.pos);
    }
    return output.pos;
  }
};

}  // namespace

std::unique_ptr<Decompressor> Decompressor::open(std::string_view data, const std::string& path,
                                                 size_t limit) {
  switch (compression_of(data)) {
    case Compression::kGzip:
      return std::make_unique<GzipDecompressor>(data, path, limit);
    case Compression::kZstd:
      return std::make_unique<ZstdDecompressor>(data, path, limit);
    case Compression::kNone:
      break;
  }
  return nullptr;
}

}  // namespace castgate::player
