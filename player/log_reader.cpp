#include "player/log_reader.h"

#include "common/unique_fd.h"
#include "player/decompressor.h"
#include "player/terminal_text.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace castgate::player {

namespace {
constexpr size_t kPopulateUpTo = size_t{2} << 30;
}  // namespace

MappedFile::MappedFile(const std::string& path, Content content) : path_(path) {
  if (path == "-") {
    owned_.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    data_ = owned_.data();
    size_ = owned_.size();
  } else {
    // O_NONBLOCK: a FIFO planted among the logs must not hang the player in open().
    UniqueFd owned(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    const int fd = owned.get();
    if (fd < 0)
      throw std::runtime_error("cannot open " + terminal_safe(path) + ": " + std::strerror(errno));
    struct stat st {};
    fstat(fd, &st);
    if (!S_ISREG(st.st_mode))
      throw std::runtime_error(terminal_safe(path) + " is not a regular file");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      // Faulted in up front while that is cheap (about 10% of a scan); a larger file page by
      // page, so that it need not fit the page cache.
      const int populate = size_ <= kPopulateUpTo ? MAP_POPULATE : 0;
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | populate, fd, 0);
      if (p == MAP_FAILED)
        throw std::runtime_error("cannot map " + terminal_safe(path) + ": " + std::strerror(errno));
      madvise(p, size_, MADV_SEQUENTIAL);
      data_ = static_cast<const char*>(p);
      mapped_ = size_;
    }
  }
  if (content == Content::kDecompressed) decompress();
}

MappedFile::~MappedFile() {
  if (mapped_) munmap(const_cast<char*>(data_), mapped_);
}

namespace {

// An unlinked temporary file that decompressed data is written to, then mapped.
class TempOutput {
 public:
  explicit TempOutput(const std::string& for_path) : for_(for_path) {
    const char* dir = std::getenv("TMPDIR");
    fd_.reset(::open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd_)
      throw std::runtime_error("cannot create a temporary file to decompress " +
                               terminal_safe(for_) + ": " + std::strerror(errno));
  }
  TempOutput(const TempOutput&) = delete;
  TempOutput& operator=(const TempOutput&) = delete;
  void write(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_.get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        throw std::runtime_error("cannot write the decompressed " + terminal_safe(for_) + ": " +
                                 std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
      size_ += static_cast<size_t>(w);
    }
  }
  size_t size() const { return size_; }
  int fd() const { return fd_.get(); }

 private:
  std::string for_;
  UniqueFd fd_;
  size_t size_ = 0;
};

constexpr size_t kChunk = 1 << 18;

}  // namespace

void MappedFile::decompress() {
  auto decompressor = Decompressor::open(data(), path_);
  if (!decompressor) return;
  compression_ = to_string(decompressor->compression());
  TempOutput out(path_);
  std::vector<char> buf(kChunk);
  while (size_t n = decompressor->read(buf.data(), buf.size())) out.write(buf.data(), n);
  std::cerr << decompressor->warning();
  if (mapped_) munmap(const_cast<char*>(data_), mapped_);
  mapped_ = 0;
  owned_.clear();
  owned_.shrink_to_fit();
  data_ = nullptr;
  size_ = out.size();
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, out.fd(), 0);
    if (p == MAP_FAILED)
      throw std::runtime_error("cannot map the decompressed " + terminal_safe(path_) + ": " +
                               std::strerror(errno));
    madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(p);
    mapped_ = size_;
  }
}

namespace {

// Whether [p, stop) holds the word "castgate". In a castgate line it comes early
// (`{"@timestamp":"…","castgate":{`, no 'c' before it), so finding its first letter with memchr
// and comparing the rest is cheaper than a general substring search set up for every line.
bool names_castgate(const char* p, const char* stop) {
  static constexpr std::string_view kWord = "castgate";
  // castgate's own lines: {"@timestamp":"2026-11-30T16:24:00.123456Z","castgate":{...
  constexpr size_t kRawOffset = 45;
  if (stop - p > static_cast<ptrdiff_t>(kRawOffset + kWord.size()) &&
      std::memcmp(p + kRawOffset, kWord.data(), kWord.size()) == 0)
    return true;
  while (stop - p >= static_cast<ptrdiff_t>(kWord.size())) {
    const char* c = static_cast<const char*>(
        std::memchr(p, 'c', static_cast<size_t>(stop - p) - (kWord.size() - 1)));
    if (!c) return false;
    if (std::memcmp(c + 1, kWord.data() + 1, kWord.size() - 1) == 0) return true;
    p = c + 1;
  }
  return false;
}

}  // namespace

void LineCensus::add(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    ++numbered;
    if (stop > p) {
      ++lines;
      // Every stored shape (raw, Docker, CRI, a shipper's record) ends with the object's brace:
      // a line cut short does not, and is no event either.
      const char* last = stop - 1;
      if (*last == '\r' && last > p) --last;
      if (*last == '}' && names_castgate(p, stop))
        ++candidates;
      else if (first_other == 0)
        first_other = numbered;
    }
    p = stop + 1;
  }
}

LineCensus census(const MappedFile& file) {
  LineCensus c;
  c.add(file.data());
  return c;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& path : paths) {
    std::error_code ec;
    if (path != "-" && fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
           it.increment(ec))
        // Links are not followed: an object planted in the tree must not make the player read
        // a file elsewhere on the analyst's machine (a link given by name still is).
        if (!it->is_symlink(ec) && it->is_regular_file(ec)) found.push_back(it->path().string());
      if (ec) throw std::runtime_error("cannot read the directory " + path + ": " + ec.message());
      std::sort(found.begin(), found.end());
      if (found.empty())
        std::cerr << "castgate-player: " << terminal_safe(path) << ": no files in it\n";
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(path);
    }
  }
  return out;
}

void for_each_line(std::string_view all, std::string_view needle,
                   const std::function<void(std::string_view, size_t)>& fn) {
  const char* base = all.data();
  const char* end = base + all.size();
  if (needle.empty()) {
    size_t line_no = 0;
    for (const char* p = base; p < end;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* stop = nl ? nl : end;
      ++line_no;
      if (stop > p) fn(std::string_view(p, static_cast<size_t>(stop - p)), line_no);
      p = stop + 1;
    }
    return;
  }
  const char* p = base;
  while (p < end) {
    const void* hit = memmem(p, static_cast<size_t>(end - p), needle.data(), needle.size());
    if (!hit) return;
    const char* h = static_cast<const char*>(hit);
    const char* start = h;
    while (start > base && start[-1] != '\n') --start;
    const char* nl = static_cast<const char*>(std::memchr(h, '\n', static_cast<size_t>(end - h)));
    const char* stop = nl ? nl : end;
    fn(std::string_view(start, static_cast<size_t>(stop - start)), 0);
    p = stop + 1;
  }
}

const std::vector<std::string_view>& castgate_top_level_members() {
  static const std::vector<std::string_view> keys = {
      "@timestamp", "asciicast", "castgate", "destination", "ecs",     "error", "event",  "file",
      "message",    "network",   "observer", "process",     "related", "rule",  "source", "user"};
  return keys;
}

namespace {

bool castgate_member(std::string_view key) {
  for (auto k : castgate_top_level_members())
    if (k == key) return true;
  return false;
}

bool is_event(const nlohmann::json& j) {
  return j.is_object() && j.contains("castgate") && j["castgate"].is_object() &&
         j["castgate"].contains("seq") && j.contains("event");
}

bool reencode(const nlohmann::json& j, StoredEvent& out) {
  nlohmann::json e = nlohmann::json::object();
  for (auto& [k, v] : j.items())
    if (castgate_member(k)) e[k] = v;
  // castgate writes "message" only on terminal events (--searchable-text); elsewhere it is a log
  // shipper's (many add one), not part of the signed event.
  if (!j.contains("asciicast")) e.erase("message");
  out.owned = e.dump();
  out.canonical = out.owned;
  out.exact = false;
  return true;
}

// The value of the first "session" member in `line` written with `quote` around its strings:
// `"` in a raw line, `\"` inside the string a container runtime wraps the line in.
std::string_view session_value(std::string_view line, std::string_view quote) {
  constexpr size_t kMaxId = 200;
  const std::string key = std::string(quote) + "session" + std::string(quote);
  auto skip_spaces = [&](size_t p) {
    while (p < line.size() && line[p] == ' ') ++p;
    return p;
  };
  for (size_t at = line.find(key); at != std::string_view::npos; at = line.find(key, at + 1)) {
    size_t p = skip_spaces(at + key.size());
    if (p >= line.size() || line[p] != ':') continue;
    p = skip_spaces(p + 1);
    if (line.compare(p, quote.size(), quote) != 0) continue;
    p += quote.size();
    size_t end = line.find_first_of("\"\\", p);
    if (end == std::string_view::npos || end == p || end - p > kMaxId) continue;
    return line.substr(p, end - p);
  }
  return {};
}

}  // namespace

bool unwrap_line(std::string_view line, StoredEvent& out) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return false;
  // Raw castgate line: castgate writes "@timestamp" first.
  if (line.rfind("{\"@timestamp\":", 0) == 0 &&
      line.find("\"castgate\":{") != std::string_view::npos &&
      line.find("\"log\":") == std::string_view::npos) {
    out.canonical = line;
    out.exact = true;
    out.owned.clear();
    return true;
  }
  // CRI: "<time> stdout F <line>".
  if (line[0] != '{') {
    size_t s1 = line.find(' ');
    size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
    size_t s3 = s2 == std::string_view::npos ? s2 : line.find(' ', s2 + 1);
    if (s3 == std::string_view::npos) return false;
    return unwrap_line(line.substr(s3 + 1), out);
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  // Docker json-file or a shipper that kept the original line in "log".
  if (j.contains("log") && j["log"].is_string()) {
    std::string inner = j["log"].get<std::string>();
    while (!inner.empty() && (inner.back() == '\n' || inner.back() == '\r')) inner.pop_back();
    StoredEvent nested;
    if (!inner.empty() && inner[0] == '{' && unwrap_line(inner, nested)) {
      out.owned = nested.exact ? inner : nested.owned;
      out.canonical = out.owned;
      out.exact = nested.exact;
      return true;
    }
  }
  if (is_event(j)) return reencode(j, out);
  // Merge_Log_Key: the event is one level down.
  for (auto& [k, v] : j.items())
    if (is_event(v)) return reencode(v, out);
  return false;
}

std::string_view session_named_in(std::string_view line) {
  std::string_view id = session_value(line, "\"");
  return id.empty() ? session_value(line, "\\\"") : id;
}

}  // namespace castgate::player
