// Reads castgate events back from logs as they are stored: the raw JSON lines castgate wrote,
// lines wrapped by a container runtime (Docker json-file, CRI), or records re-encoded by a log
// shipper (Fluent Bit with Merge_Log, with or without Merge_Log_Key). Files are memory-mapped and
// scanned without copying; gzip (Fluent Bit's S3 objects) and zstd files, recognised by their
// magic bytes, are first decompressed into an unlinked temporary file, which is mapped instead.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace castgate::player {

// The top-level members a castgate event may have (docs/events.schema.json): a log shipper's own
// members (kubernetes, stream, time, log, ...) are not part of the signed event.
const std::vector<std::string_view>& castgate_top_level_members();

// A piece of a log at least this large (a plain file's mapping, not a decompressed piece) is
// worth a second core: list counts its lines, commands catalogues it, while the first scans.
inline constexpr size_t kParallelScanFrom = size_t{16} << 20;

class MappedFile {
 public:
  // kDecompressed: compressed data is decompressed into an unlinked temporary file, which is
  // mapped instead; kStored: the bytes as stored.
  enum class Content { kDecompressed, kStored };
  // "-" reads stdin; throws on failure. Compressed data that ends early (a truncated object) is
  // kept as far as it goes, with a warning on stderr.
  explicit MappedFile(const std::string& path, Content content = Content::kDecompressed);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view data() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // "gzip", "zstd" or "" (stored plain).
  const char* compression() const { return compression_; }
  // Bytes readable after `p` (for parsers that read ahead).
  size_t readable_after(const char* p) const { return static_cast<size_t>(data_ + size_ - p); }

 private:
  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  std::string owned_;  // stdin
  const char* compression_ = "";
  void decompress();
};

// How many lines of a file can hold a castgate event (they name "castgate", raw or escaped, and
// end with the object's closing brace, so a line cut short does not count), and the first that
// cannot: what the commands report instead of skipping lines silently.
struct LineCensus {
  size_t lines = 0;  // not empty
  size_t candidates = 0;
  size_t first_other = 0;  // its line number in the file, 0 if none
  size_t numbered = 0;     // lines counted so far, empty ones included
  size_t others() const { return lines - candidates; }
  // Counts the lines of `text`, the next piece of the file: it starts where a line does.
  void add(std::string_view text);
};
LineCensus census(const MappedFile& file);

// The files a command reads: a directory stands for every regular file below it (recursively,
// in name order); "-" is standard input.
std::vector<std::string> expand_inputs(const std::vector<std::string>& paths);

// One castgate event recovered from a stored line.
struct StoredEvent {
  std::string_view canonical;  // the event's canonical JSON (points into the file or `owned`)
  std::string owned;           // set when the event had to be re-encoded
  bool exact = false;          // `canonical` is the very bytes castgate wrote
};

// Recovers the castgate event in `line`, if there is one.
bool unwrap_line(std::string_view line, StoredEvent& out);

// The session id a line names as "session":"<id>", also in the escaped form a container runtime
// writes ({"log":"{\"session\":\"<id>\"..."}), found textually so that it works on lines
// that do not parse (cut short, not valid JSON or UTF-8). Empty if the line names none. The id
// is not checked: it is only ever compared with the ids of sessions found in whole events.
std::string_view session_named_in(std::string_view line);

// Calls `fn(line, line_number)` for every line of `file` that contains `needle` (all lines if
// `needle` is empty; line numbers only then). Finding the needle first and the line second is
// what makes selection fast.
// `text` is whole lines: a file's content, or a piece of it that starts at a line's start
// (line numbers then count from there).
void for_each_line(std::string_view text, std::string_view needle,
                   const std::function<void(std::string_view, size_t)>& fn);
inline void for_each_line(const MappedFile& file, std::string_view needle,
                          const std::function<void(std::string_view, size_t)>& fn) {
  for_each_line(file.data(), needle, fn);
}

}  // namespace castgate::player
