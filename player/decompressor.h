// Decompresses logs as log stores keep them, a piece at a time: gzip (Fluent Bit's S3 objects,
// with every member when several were appended) through ISA-L, and zstd. Data cut short or
// followed by other bytes (padding) is read as far as it goes; data that would decompress to more
// than decompressed_limit() is refused as a decompression bomb.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace castgate::player {

enum class Compression { kNone, kGzip, kZstd };
// "gzip", "zstd" or "" (stored plain).
const char* to_string(Compression c);
// Recognised by the magic bytes at the start of `data`.
Compression compression_of(std::string_view data);

// 1,000 times the compressed size (logs compress 10 to 50 times), at least 1 GiB, at most 16 GiB.
size_t decompressed_limit(size_t compressed);

class Decompressor {
 public:
  // Nothing if `data` is not compressed. `data` must outlive the decompressor; `path` names it
  // in messages.
  static std::unique_ptr<Decompressor> open(std::string_view data, const std::string& path,
                                            size_t limit);
  static std::unique_ptr<Decompressor> open(std::string_view data, const std::string& path) {
    return open(data, path, decompressed_limit(data.size()));
  }
  virtual ~Decompressor() = default;
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // Writes up to `room` (> 0) bytes of output at `out` and returns how many; 0 only at the end.
  // Throws std::runtime_error on data that is not valid from its start, or past the limit.
  size_t read(char* out, size_t room);
  Compression compression() const { return compression_; }
  // Bytes read out so far.
  size_t produced() const { return produced_; }
  // Once read() returned 0: what to say on stderr when the data ended before its last member or
  // frame did, or was followed by other bytes; empty when it was whole.
  std::string warning() const;

 protected:
  Decompressor(Compression c, std::string path, size_t limit)
      : compression_(c), path_(std::move(path)), limit_(limit) {}
  // As read(), without the limit; not called again once it returned end(...).
  virtual size_t fill(char* out, size_t room) = 0;
  // The data ends after `n` more bytes of output; `whole`: as it should (see warning()).
  size_t end(bool whole, size_t n) {
    ended_ = true;
    whole_ = whole;
    return n;
  }
  // Throws: not valid data (`why`), found after `pending` bytes more than produced().
  [[noreturn]] void invalid(const std::string& why, size_t pending) const;

 private:
  bool ended_ = false;
  bool whole_ = true;
  Compression compression_;
  std::string path_;
  size_t limit_;
  size_t produced_ = 0;
};

}  // namespace castgate::player
