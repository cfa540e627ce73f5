#include "common/time_zone.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "common/text.h"

namespace castgate {
namespace {

constexpr size_t kMaxTransitions = 10000, kMaxTypes = 256, kMaxChars = 1024, kMaxLeaps = 1000;

class Reader {
 public:
  Reader(std::string_view b, const std::string& name) : b_(b), name_(name) {}
  uint64_t be(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    return v;
  }
  void skip(size_t n) {
    need(n);
    pos_ += n;
  }
  std::string_view take(size_t n) {
    need(n);
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error("time zone " + name_ + ": " + why);
  }

 private:
  void need(size_t n) const {
    if (n > b_.size() - pos_) fail("not a valid zoneinfo (TZif) file: cut short");
  }
  std::string_view b_;
  const std::string& name_;
  size_t pos_ = 0;
};

struct Counts {
  uint64_t isut, isstd, leap, time, type, chars;
};

Counts header(Reader& r, char& version) {
  if (r.take(4) != "TZif") r.fail("not a zoneinfo (TZif) file");
  version = r.take(1)[0];
  r.skip(15);
  Counts c{r.be(4), r.be(4), r.be(4), r.be(4), r.be(4), r.be(4)};
  if (c.time > kMaxTransitions || c.type == 0 || c.type > kMaxTypes || c.chars > kMaxChars ||
      c.leap > kMaxLeaps || (c.isut != 0 && c.isut != c.type) ||
      (c.isstd != 0 && c.isstd != c.type))
    r.fail("not a valid zoneinfo (TZif) file: bad counts");
  return c;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.back() == '/') return false;
  if (name.find("//") != std::string::npos || name.find("..") != std::string::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '+' || c == '/';
  });
}

}  // namespace

TimeZone TimeZone::utc() {
  TimeZone z;
  z.name_ = "UTC";
  return z;
}

TimeZone TimeZone::load(const std::string& name) {
  if (name == "UTC") return utc();
  if (!valid_name(name)) throw std::runtime_error("time zone \"" + name + "\": not a zone name");
  const char* dir = std::getenv("TZDIR");
  std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name;
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception&) {
    throw std::runtime_error("time zone " + name + ": unknown (no " + path + ")");
  }
  return parse(bytes, name);
}

TimeZone TimeZone::parse(std::string_view bytes, const std::string& name) {
  constexpr size_t kMaxFile = 1 << 20;
  Reader r(bytes.substr(0, kMaxFile), name);
  char version = 0;
  Counts c = header(r, version);
  size_t width = 4;
  if (version >= '2') {  // skip the 32-bit block; the 64-bit one follows with its own header
    r.skip(c.time * 5 + c.type * 6 + c.chars + c.leap * 8 + c.isstd + c.isut);
    c = header(r, version);
    width = 8;
  } else if (version != 0) {
    r.fail("unknown zoneinfo (TZif) version");
  }
  TimeZone z;
  z.name_ = name;
  std::vector<int64_t> times(c.time);
  for (auto& t : times) {
    uint64_t v = r.be(width);
    t = width == 8 ? static_cast<int64_t>(v) : static_cast<int32_t>(static_cast<uint32_t>(v));
  }
  std::vector<uint8_t> idx(c.time);
  for (auto& i : idx) {
    i = static_cast<uint8_t>(r.be(1));
    if (i >= c.type) r.fail("not a valid zoneinfo (TZif) file: bad type index");
  }
  std::vector<int32_t> utoff(c.type);
  for (auto& u : utoff) {
    u = static_cast<int32_t>(static_cast<uint32_t>(r.be(4)));
    r.skip(2);  // isdst, abbreviation index
    if (u < -26 * 3600 || u > 26 * 3600) r.fail("not a valid zoneinfo (TZif) file: bad offset");
  }
  // The rest of the block (designations, leap seconds, indicators) must be there too.
  r.skip(c.chars + c.leap * (width + 4) + c.isstd + c.isut);
  for (size_t i = 1; i < times.size(); ++i)
    if (times[i] <= times[i - 1]) r.fail("not a valid zoneinfo (TZif) file: unordered");
  z.transitions_ = std::move(times);
  for (auto i : idx) z.offsets_.push_back(utoff[i]);
  z.initial_offset_ = utoff[0];  // RFC 8536: type 0 applies before the first transition
  return z;
}

std::chrono::seconds TimeZone::offset_at(std::chrono::sys_seconds t) const {
  int64_t s = t.time_since_epoch().count();
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), s);
  if (it == transitions_.begin()) return std::chrono::seconds(initial_offset_);
  return std::chrono::seconds(offsets_[static_cast<size_t>(it - transitions_.begin()) - 1]);
}

int64_t TimeZone::local_seconds(std::chrono::sys_seconds t) const {
  return t.time_since_epoch().count() + offset_at(t).count();
}

std::chrono::sys_seconds TimeZone::from_local(int64_t local) const {
  // Two guesses settle it: the offset before the change, then the one at that instant.
  auto guess = std::chrono::sys_seconds(std::chrono::seconds(local)) -
               offset_at(std::chrono::sys_seconds(std::chrono::seconds(local)));
  auto second = std::chrono::sys_seconds(std::chrono::seconds(local)) - offset_at(guess);
  return std::max(guess, second);
}

}  // namespace castgate
