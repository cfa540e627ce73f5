#include "player/log_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace castgate::player {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  if (path == "-") {
    owned_.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    data_ = owned_.data();
    size_ = owned_.size();
    return;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error("cannot map " + path + ": " + std::strerror(errno));
    }
    madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(p);
    mapped_ = size_;
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (mapped_) munmap(const_cast<char*>(data_), mapped_);
}

void for_each_line(const MappedFile& file, std::string_view needle,
                   const std::function<void(std::string_view, size_t)>& fn) {
  std::string_view all = file.data();
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

namespace {

// The top-level members a castgate event may have (docs/events.schema.json); a log shipper's
// own members (kubernetes, stream, time, log, ...) are not part of the signed event.
bool castgate_member(std::string_view key) {
  static constexpr std::string_view kKeys[] = {"@timestamp", "asciicast", "castgate", "destination",
                                               "event",      "file",      "process",  "rule",
                                               "source",     "user"};
  for (auto k : kKeys)
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
