#include "asciicast/tar_follower.h"

#include <algorithm>
#include <iterator>

#include "common/text.h"

namespace castgate::asciicast {
namespace {

// A NUL- or space-terminated field.
std::string_view field(const std::array<char, TarFollower::kBlock>& b, size_t at, size_t len) {
  std::string_view f(b.data() + at, len);
  return f.substr(0, f.find('\0'));
}

// An octal number (spaces or NULs around it), or GNU's base-256 form (high bit of the first byte).
std::optional<uint64_t> number(const std::array<char, TarFollower::kBlock>& b, size_t at,
                               size_t len, bool base256 = true) {
  auto first = static_cast<unsigned char>(b[at]);
  if (first & 0x80) {
    if (!base256) return std::nullopt;
    if (first != 0x80) return std::nullopt;  // negative, or more than 64 bits
    uint64_t v = 0;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 56) return std::nullopt;
      v = v << 8 | static_cast<unsigned char>(b[at + i]);
    }
    return v;
  }
  size_t i = at, end = at + len;
  while (i < end && b[i] == ' ') ++i;
  uint64_t v = 0;
  bool digits = false;
  for (; i < end && b[i] >= '0' && b[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<uint64_t>(b[i] - '0');
    digits = true;
  }
  for (; i < end; ++i)
    if (b[i] != ' ' && b[i] != '\0') return std::nullopt;
  if (!digits) return std::nullopt;
  return v;
}

// The header's checksum: its bytes summed with the checksum field read as spaces (unsigned, or
// signed as some old tars summed). Octal only, as GNU tar reads it.
bool checksum_holds(const std::array<char, TarFollower::kBlock>& b) {
  auto stored = number(b, 148, 8, false);
  if (!stored) return false;
  uint64_t sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < TarFollower::kBlock; ++i) {
    char c = (i >= 148 && i < 156) ? ' ' : b[i];
    sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == sum || static_cast<int64_t>(*stored) == signed_sum;
}

// A pax extended header's records ("LEN key=value\n"): path, linkpath and size are taken; keys
// that only describe a file (times, owners, a comment, the charset) are let pass; any other key
// (GNU.sparse.*, xattrs, vendor keys) is one whose meaning to GNU tar is not modelled here: false.
// A global header (`global`) may hold only a comment (what `git archive` writes).
bool pax_records(std::string_view data, bool global, std::optional<std::string>& path,
                 std::optional<std::string>& link, std::optional<uint64_t>& size) {
  static constexpr std::string_view kDescriptive[] = {"mtime",   "atime",     "ctime", "uid",
                                                      "gid",     "uname",     "gname", "comment",
                                                      "charset", "hdrcharset"};
  while (!data.empty()) {
    size_t sp = data.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp > 6) return false;  // at most 999999
    uint64_t len = 0;
    for (char c : data.substr(0, sp)) {
      if (c < '0' || c > '9') return false;
      len = len * 10 + static_cast<uint64_t>(c - '0');
    }
    if (len <= sp + 1 || len > data.size() || data[len - 1] != '\n') return false;
    std::string_view record = data.substr(sp + 1, len - sp - 2);
    data.remove_prefix(len);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (global) {
      if (key != "comment") return false;
    } else if ((key == "path" || key == "linkpath") && value.find('\0') != value.npos) {
      return false;  // GNU tar reads the value up to the NUL: a name other than the one kept
    } else if (key == "path") {
      path = std::string(value);
    } else if (key == "linkpath") {
      link = std::string(value);
    } else if (key == "size") {
      uint64_t v = 0;
      if (value.empty() || value.size() > 18) return false;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      size = v;
    } else if (std::find(std::begin(kDescriptive), std::end(kDescriptive), key) ==
               std::end(kDescriptive)) {
      return false;
    }
  }
  return true;
}

// A member name as GNU tar extracts it, relative to its directory: leading slashes removed (as
// tar does), empty and "." components dropped.
std::string normalized(std::string_view name) {
  std::string out;
  for (std::string_view part : {name}) {
    size_t start = 0;
    while (start <= part.size()) {
      size_t slash = part.find('/', start);
      std::string_view c =
          part.substr(start, slash == std::string_view::npos ? part.npos : slash - start);
      if (!c.empty() && c != ".") {
        if (!out.empty()) out += '/';
        out += c;
      }
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
  }
  return out;
}

uint64_t padded(uint64_t size) {
  return (size + TarFollower::kBlock - 1) / TarFollower::kBlock * TarFollower::kBlock;
}

}  // namespace

TarFollower::TarFollower(std::string directory) : directory_(std::move(directory)) {}

void TarFollower::fail(std::string why, std::vector<FileOperation>& out) {
  error_ = "not tar: " + std::move(why);
  FileOperation o;
  o.protocol = "tar";
  o.action = "error";
  o.path = directory_;
  o.direction = "upload";
  o.ok = false;
  o.status = error_;
  out.push_back(std::move(o));
}

void TarFollower::feed(std::string_view bytes, std::vector<FileOperation>& out) {
  while (!bytes.empty() && error_.empty() && !ended_) {
    if (remaining_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size()));
      if (data_ != Data::kSkip) {
        // Metadata: keep its unpadded bytes.
        uint64_t kept = padded(data_size_) - remaining_;
        if (kept < data_size_)
          metadata_.append(
              bytes.substr(0, static_cast<size_t>(std::min<uint64_t>(n, data_size_ - kept))));
      }
      remaining_ -= n;
      bytes.remove_prefix(n);
      if (remaining_ == 0 && data_ != Data::kSkip) metadata_done(out);
      continue;
    }
    size_t n = std::min(kBlock - filled_, bytes.size());
    std::copy_n(bytes.data(), n, block_.data() + filled_);
    filled_ += n;
    bytes.remove_prefix(n);
    if (filled_ == kBlock) {
      filled_ = 0;
      header(out);
    }
  }
}

void TarFollower::metadata_done(std::vector<FileOperation>& out) {
  std::string data;
  data.swap(metadata_);
  if (data_ == Data::kLongName || data_ == Data::kLongLink) {
    std::string_view name(data);
    (data_ == Data::kLongName ? long_name_ : long_link_) =
        std::string(name.substr(0, name.find('\0')));
  } else if (data_ == Data::kPax || data_ == Data::kGlobal) {
    bool global = data_ == Data::kGlobal;
    data_ = Data::kSkip;
    if (!pax_records(data, global, long_name_, long_link_, pax_size_))
      fail("a pax header with a record castgate does not follow", out);
  }
  data_ = Data::kSkip;
}

void TarFollower::header(std::vector<FileOperation>& out) {
  if (std::all_of(block_.begin(), block_.end(), [](char c) { return c == '\0'; })) {
    if (++zero_blocks_ == 2) ended_ = true;
    return;
  }
  if (zero_blocks_ > 0) return fail("a member after a zero block", out);
  if (!checksum_holds(block_)) return fail("header checksum does not match", out);
  auto size = number(block_, 124, 12);
  if (!size) return fail("header size is not a number", out);
  char type = block_[156];
  if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
    // At most one long name, one long link, or one pax header (not with them: GNU tar's order
    // of precedence between them is not modelled), before the member they describe; a global
    // header only before a member's own headers.
    bool described = long_name_ || long_link_ || pax_seen_;
    if ((type == 'L' && (long_name_ || pax_seen_)) || (type == 'K' && (long_link_ || pax_seen_)) ||
        (type == 'x' && described) || (type == 'g' && described))
      return fail("extended headers castgate does not follow in this order", out);
    if (*size > kMaxMetadata) return fail("a long name or pax header over 64 KiB", out);
    data_ = type == 'L'   ? Data::kLongName
            : type == 'K' ? Data::kLongLink
            : type == 'x' ? Data::kPax
                          : Data::kGlobal;
    if (type == 'x') pax_seen_ = true;
    if (type == 'L') long_name_ = std::string();
    if (type == 'K') long_link_ = std::string();
    data_size_ = *size;
    remaining_ = padded(*size);
    if (remaining_ == 0) metadata_done(out);
    return;
  }
  // Regular files, hard and symbolic links, directories: anything else (devices, FIFOs, sparse
  // files, Solaris extended headers, volume labels, multi-volume parts) is not followed.
  if (std::string_view("0\0"
                       "7125",
                       6)
          .find(type) == std::string_view::npos)
    return fail(std::string("a member of type '") + (type >= 0x20 && type < 0x7f ? type : '?') +
                    "' castgate does not follow",
                out);
  std::string name;
  if (long_name_) {
    name = std::move(*long_name_);
  } else {
    name = std::string(field(block_, 0, 100));
    std::string_view magic(block_.data() + 257, 5);
    std::string_view prefix = field(block_, 345, 155);
    if (magic == "ustar" && block_[262] == '\0' && !prefix.empty())
      name = std::string(prefix) + "/" + name;
  }
  std::string link = long_link_ ? std::move(*long_link_) : std::string(field(block_, 157, 100));
  uint64_t data_size = pax_size_.value_or(*size);
  long_name_.reset();
  long_link_.reset();
  pax_size_.reset();
  pax_seen_ = false;
  if (name.empty()) return fail("a member without a name", out);
  // GNU tar makes a regular member whose name ends in '/' a directory, and reads no data for it.
  if (name.back() == '/' && type != '5') return fail("a file member named like a directory", out);
  std::string relative = normalized(name);
  // A member written through a symbolic link the archive made (`k -> .ssh`, then `k/rc`) lands
  // where the listed path does not say: not followed.
  for (const auto& l : symlinks_)
    if (starts_with(relative, l) && relative.size() > l.size() && relative[l.size()] == '/')
      return fail("a member under a symbolic link of the archive", out);
  // A hard link to a symbolic link is another symbolic link (link(2) does not follow it).
  std::string link_relative = type == '1' ? normalized(link) : std::string();
  bool link_to_symlink = false;
  for (const auto& l : symlinks_) {
    if (type != '1') break;
    if (link_relative == l) link_to_symlink = true;
    if (starts_with(link_relative, l) && link_relative.size() > l.size() &&
        link_relative[l.size()] == '/')
      return fail("a hard link under a symbolic link of the archive", out);
  }
  if (type == '2' || link_to_symlink) {
    if (symlinks_.size() >= kMaxSymlinks) return fail("more symbolic links than followed", out);
    symlinks_.push_back(relative);
  }

  FileOperation o;
  o.protocol = "tar";
  o.direction = "upload";
  if (directory_ == ".")
    o.path = relative.empty() ? "." : relative;
  else
    o.path = relative.empty() ? directory_ : directory_ + "/" + relative;
  if (auto mode = number(block_, 100, 8)) o.mode = static_cast<uint32_t>(*mode & 07777);
  switch (type) {
    case '5':
      o.action = "mkdir";
      break;
    case '2':  // the target as the link holds it, "//" and "/./" collapsed for the alert rules
      o.action = "symlink";
      o.target_path = (link[0] == '/' ? "/" : "") + normalized(link);
      break;
    case '1':  // a member of the archive: where tar finds it
      o.action = "hardlink";
      o.target_path = directory_ == "." ? link_relative : directory_ + "/" + link_relative;
      break;
    default:  // regular files ('0', '\0', '7')
      o.action = "transfer";
      o.size = data_size;
      break;
  }
  ++members_;
  out.push_back(std::move(o));
  // Links and directories carry no data, whatever their size field says.
  bool has_data = type != '1' && type != '2' && type != '5';
  data_ = Data::kSkip;
  remaining_ = has_data ? padded(data_size) : 0;
}

void TarFollower::finish(std::vector<FileOperation>& out) {
  if (!error_.empty() || ended_) return;
  if (members_ > 0 || filled_ > 0 || remaining_ > 0) fail("the archive ended early", out);
}

}  // namespace castgate::asciicast
