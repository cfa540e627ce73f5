// Follows a tar archive as `tar x` reads it from the user (an upload sink, upload_sink.h), for its
// members: name, type, size, mode, link target. Each member becomes a file operation (an upload
// to the directory tar extracts into), so an archive's files are listed and checked against the
// path alert rules as SFTP's and SCP's are, while the archive's bytes are recorded as a stream
// summary. Member contents are never kept.
//
// Strictly, failing closed on what is not modelled exactly as GNU tar reads it: every header's
// checksum must hold (octal; POSIX ustar, GNU and old v7 headers); before a member, at most one
// GNU long name and one long link ('L', 'K'), or one pax header ('x': path, linkpath, size, and
// keys that only describe the file), at most kMaxMetadata bytes each; a global pax header only
// with a comment (`git archive`); members are regular files, hard and symbolic links and
// directories, none under a symbolic link the archive itself made; two zero blocks end it.
// From the first header that is not so, error() says why and nothing more is parsed: the caller
// records the rest in full. Compressed archives are not followed (upload_sink.h does not take
// `tar xz`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asciicast/file_operation.h"

namespace castgate::asciicast {

class TarFollower {
 public:
  static constexpr size_t kBlock = 512;
  static constexpr size_t kMaxMetadata = 65536;
  static constexpr size_t kMaxSymlinks = 4096;  // symbolic links remembered per archive

  // `directory`: where tar extracts (its -C), prefixed to relative member names.
  explicit TarFollower(std::string directory);

  void feed(std::string_view bytes, std::vector<FileOperation>& out);
  // The data ended: an archive cut short is an error operation.
  void finish(std::vector<FileOperation>& out);
  const std::string& error() const { return error_; }
  bool ended() const { return ended_; }

 private:
  enum class Data { kSkip, kLongName, kLongLink, kPax, kGlobal };
  void header(std::vector<FileOperation>& out);
  void metadata_done(std::vector<FileOperation>& out);
  void fail(std::string why, std::vector<FileOperation>& out);

  std::string directory_;
  std::array<char, kBlock> block_{};
  size_t filled_ = 0;
  uint64_t remaining_ = 0;  // data bytes (padded to whole blocks) still to pass
  uint64_t data_size_ = 0;  // unpadded size of the current metadata data
  Data data_ = Data::kSkip;
  std::string metadata_;  // the data of an 'L', 'K' or 'x' member being read
  std::optional<std::string> long_name_, long_link_;
  std::optional<uint64_t> pax_size_;
  bool pax_seen_ = false;              // a pax header describes the next member
  std::vector<std::string> symlinks_;  // the archive's symbolic links, as relative paths
  int zero_blocks_ = 0;
  bool ended_ = false;
  uint64_t members_ = 0;
  std::string error_;
};

}  // namespace castgate::asciicast
