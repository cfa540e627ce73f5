#include "asciicast/sftp_parser.h"

#include <algorithm>

namespace castgate::asciicast {
namespace {

constexpr uint32_t kMaxPacket = 16u << 20;  // far above OpenSSH's 256 KiB; beyond is garbage
constexpr size_t kKeep = 64 * 1024;         // bytes of a packet body kept for parsing
constexpr size_t kMaxRequests = 8192;
constexpr size_t kMaxHandles = 1024;

enum : uint8_t {
  FXP_INIT = 1,
  FXP_VERSION = 2,
  FXP_OPEN = 3,
  FXP_CLOSE = 4,
  FXP_READ = 5,
  FXP_WRITE = 6,
  FXP_LSTAT = 7,
  FXP_FSTAT = 8,
  FXP_SETSTAT = 9,
  FXP_FSETSTAT = 10,
  FXP_OPENDIR = 11,
  FXP_READDIR = 12,
  FXP_REMOVE = 13,
  FXP_MKDIR = 14,
  FXP_RMDIR = 15,
  FXP_REALPATH = 16,
  FXP_STAT = 17,
  FXP_RENAME = 18,
  FXP_READLINK = 19,
  FXP_SYMLINK = 20,
  FXP_STATUS = 101,
  FXP_HANDLE = 102,
  FXP_DATA = 103,
  FXP_NAME = 104,
  FXP_ATTRS = 105,
  FXP_EXTENDED = 200,
  FXP_EXTENDED_REPLY = 201,
  // Internal codes for extended requests worth reporting.
  X_POSIX_RENAME = 230,
  X_HARDLINK = 231,
  X_LSETSTAT = 232
};
constexpr uint32_t kFxfRead = 1, kFxfWrite = 2, kFxfAppend = 4, kFxfCreat = 8, kFxfTrunc = 0x10;
constexpr uint32_t kAttrSize = 1, kAttrUidGid = 2, kAttrPermissions = 4, kAttrAcModTime = 8,
                   kAttrExtended = 0x80000000u;

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool u8(uint8_t& v) {
    if (d_.empty()) return false;
    v = static_cast<uint8_t>(d_[0]);
    d_.remove_prefix(1);
    return true;
  }
  bool u32(uint32_t& v) {
    if (d_.size() < 4) return false;
    auto* p = reinterpret_cast<const uint8_t*>(d_.data());
    v = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    d_.remove_prefix(4);
    return true;
  }
  bool u64(uint64_t& v) {
    uint32_t hi, lo;
    if (!u32(hi) || !u32(lo)) return false;
    v = uint64_t{hi} << 32 | lo;
    return true;
  }
  bool str(std::string& v) {
    uint32_t n;
    if (!u32(n) || d_.size() < n) return false;
    v.assign(d_.substr(0, n));
    d_.remove_prefix(n);
    return true;
  }
  bool skip_str() {
    uint32_t n;
    if (!u32(n) || d_.size() < n) return false;
    d_.remove_prefix(n);
    return true;
  }
  // ATTRS: keeps the size and permissions, skips the rest.
  bool attrs(std::optional<uint64_t>& size, std::optional<uint32_t>& mode) {
    uint32_t flags;
    if (!u32(flags)) return false;
    if (flags & kAttrSize) {
      uint64_t s;
      if (!u64(s)) return false;
      size = s;
    }
    uint32_t tmp;
    if ((flags & kAttrUidGid) && (!u32(tmp) || !u32(tmp))) return false;
    if (flags & kAttrPermissions) {
      if (!u32(tmp)) return false;
      mode = tmp & 07777;
    }
    if ((flags & kAttrAcModTime) && (!u32(tmp) || !u32(tmp))) return false;
    if (flags & kAttrExtended) {
      uint32_t count;
      if (!u32(count)) return false;
      for (uint32_t i = 0; i < count && i < 1024; ++i)
        if (!skip_str() || !skip_str()) return false;
    }
    return true;
  }

 private:
  std::string_view d_;
};

std::string direction_of(uint32_t pflags) {
  bool reads = pflags & kFxfRead;
  bool writes = pflags & (kFxfWrite | kFxfAppend | kFxfCreat | kFxfTrunc);
  if (reads && writes) return "read-write";
  if (writes) return "upload";
  if (reads) return "download";
  return "";
}

}  // namespace

const char* sftp_status_name(uint32_t code) {
  static const char* kNames[] = {
      "ok",          "eof",           "no_such_file",    "permission_denied", "failure",
      "bad_message", "no_connection", "connection_lost", "op_unsupported"};
  return code < sizeof kNames / sizeof kNames[0] ? kNames[code] : "unknown";
}

std::string SftpMetadataParser::pending_bytes(bool client) const {
  const Framer& f = client ? client_ : server_;
  std::string out(reinterpret_cast<const char*>(f.length_bytes),
                  static_cast<size_t>(f.have_length));
  // A packet is known not to be SFTP by its length or its type (checked as soon as they arrive),
  // so only its first bytes can be pending when that turns out.
  if (f.have_length == 4) out += f.head.substr(0, 16);
  return out;
}

void SftpMetadataParser::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  requests_.clear();
}

template <typename OnPacket>
void SftpMetadataParser::frame(Framer& f, std::string_view bytes, OnPacket on_packet) {
  while (!bytes.empty() && error_.empty()) {
    if (f.have_length < 4) {
      f.length_bytes[f.have_length++] = static_cast<uint8_t>(bytes[0]);
      bytes.remove_prefix(1);
      if (f.have_length == 4) {
        f.length = uint32_t{f.length_bytes[0]} << 24 | uint32_t{f.length_bytes[1]} << 16 |
                   uint32_t{f.length_bytes[2]} << 8 | f.length_bytes[3];
        if (f.length == 0 || f.length > kMaxPacket) {
          fail("SFTP packet of " + std::to_string(f.length) + " bytes");
          return;
        }
        f.consumed = 0;
        f.head.clear();
      }
      continue;
    }
    size_t take = std::min<size_t>(bytes.size(), f.length - f.consumed);
    bool first_byte = f.consumed == 0;
    if (f.head.size() < kKeep)
      f.head.append(bytes.substr(0, std::min(take, kKeep - f.head.size())));
    if (first_byte && take > 0) {
      std::string why = type_problem(&f == &client_, static_cast<uint8_t>(bytes[0]));
      if (!why.empty()) return fail(std::move(why));
    }
    f.consumed += static_cast<uint32_t>(take);
    bytes.remove_prefix(take);
    if (f.consumed == f.length) {
      on_packet(std::string_view(f.head), f.length);
      f.have_length = 0;
      std::string().swap(f.head);
    }
  }
}

// Whether `type` may come next from that side: INIT (client) or VERSION (server) first and only
// first, then requests, respectively responses.
std::string SftpMetadataParser::type_problem(bool client, uint8_t type) {
  bool& started = client ? client_started_ : server_started_;
  if (!started) {
    started = true;
    if (client && type != FXP_INIT) return "the client did not start with SFTP INIT";
    if (!client && type != FXP_VERSION) return "the server did not answer with SFTP VERSION";
    return "";
  }
  if (client && (type < FXP_OPEN || (type > FXP_SYMLINK && type != FXP_EXTENDED)))
    return "not an SFTP request (type " + std::to_string(type) + ")";
  if (!client && (type < FXP_STATUS || (type > FXP_ATTRS && type != FXP_EXTENDED_REPLY)))
    return "not an SFTP response (type " + std::to_string(type) + ")";
  return "";
}

void SftpMetadataParser::from_client(std::string_view bytes, std::vector<FileOperation>&) {
  frame(client_, bytes,
        [this](std::string_view head, uint32_t length) { client_packet(head, length); });
}

void SftpMetadataParser::from_server(std::string_view bytes, std::vector<FileOperation>& out) {
  frame(server_, bytes,
        [this, &out](std::string_view head, uint32_t length) { server_packet(head, length, out); });
}

void SftpMetadataParser::client_packet(std::string_view head, uint32_t) {
  Reader r(head);
  uint8_t type;
  uint32_t id;
  if (!r.u8(type)) return fail("empty SFTP packet");
  if (type == FXP_INIT) return;  // the first packet (type_problem checked the order)
  if (!r.u32(id)) return fail("SFTP request without id");
  Request q;
  q.type = type;
  std::optional<uint64_t> size;
  bool ok = true;
  switch (type) {
    case FXP_OPEN:
      ok = r.str(q.path) && r.u32(q.pflags) && r.attrs(size, q.mode);
      break;
    case FXP_CLOSE:
    case FXP_READ:
    case FXP_FSETSTAT:
      ok = r.str(q.handle);
      break;
    case FXP_WRITE: {
      uint64_t offset = 0;
      uint32_t len = 0;
      ok = r.str(q.handle) && r.u64(offset) && r.u32(len);
      q.length = len;
      break;
    }
    case FXP_SETSTAT:
      ok = r.str(q.path) && r.attrs(size, q.mode);
      break;
    case FXP_OPENDIR:
    case FXP_REMOVE:
    case FXP_RMDIR:
      ok = r.str(q.path);
      break;
    case FXP_MKDIR:
      ok = r.str(q.path) && r.attrs(size, q.mode);
      break;
    case FXP_RENAME:
      ok = r.str(q.path) && r.str(q.target_path);
      break;
    case FXP_SYMLINK:
      // OpenSSH sends (target, link), the reverse of the draft; report it as OpenSSH means it.
      ok = r.str(q.target_path) && r.str(q.path);
      break;
    case FXP_EXTENDED: {
      std::string name;
      ok = r.str(name);
      if (ok && name == "posix-rename@openssh.com") {
        q.type = X_POSIX_RENAME;
        ok = r.str(q.path) && r.str(q.target_path);
      } else if (ok && name == "hardlink@openssh.com") {
        q.type = X_HARDLINK;
        ok = r.str(q.target_path) && r.str(q.path);
      } else if (ok && name == "lsetstat@openssh.com") {
        q.type = X_LSETSTAT;
        ok = r.str(q.path) && r.attrs(size, q.mode);
      }
      break;
    }
    default:
      return;  // stat, realpath, readdir, ...: nothing to report
  }
  if (!ok) return fail("malformed SFTP request of type " + std::to_string(type));
  if (requests_.size() >= kMaxRequests) requests_.clear();  // a client that never waits
  requests_[id] = std::move(q);
}

FileOperation SftpMetadataParser::op(const char* action, const std::string& path) const {
  FileOperation o;
  o.protocol = "sftp";
  o.action = action;
  o.path = path;
  return o;
}

void SftpMetadataParser::server_packet(std::string_view head, uint32_t,
                                       std::vector<FileOperation>& out) {
  Reader r(head);
  uint8_t type;
  uint32_t id;
  if (!r.u8(type)) return fail("empty SFTP packet");
  if (type == FXP_VERSION) return;  // the first packet (type_problem checked the order)
  if (!r.u32(id)) return fail("SFTP response without id");
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request q = std::move(it->second);
  requests_.erase(it);
  if (type == FXP_HANDLE) {
    std::string handle;
    if (!r.str(handle)) return fail("malformed SFTP handle");
    if (q.type != FXP_OPEN && q.type != FXP_OPENDIR) return;
    if (handles_.size() >= kMaxHandles) handles_.clear();
    Handle h;
    h.path = q.path;
    h.directory = q.type == FXP_OPENDIR;
    h.direction = h.directory ? "" : direction_of(q.pflags);
    h.mode = q.mode;
    auto o = op(h.directory ? "list" : "open", q.path);
    o.direction = h.direction;
    o.mode = q.mode;
    out.push_back(std::move(o));
    handles_[handle] = std::move(h);
    return;
  }
  if (type == FXP_DATA) {
    uint32_t len = 0;
    if (q.type == FXP_READ && r.u32(len)) {
      auto h = handles_.find(q.handle);
      if (h != handles_.end()) h->second.bytes_read += len;
    }
    return;
  }
  if (type != FXP_STATUS) return;
  uint32_t code = 4;
  std::string message;
  if (!r.u32(code)) return fail("malformed SFTP status");
  r.str(message);
  bool success = code == 0;
  switch (q.type) {
    case FXP_WRITE:
      if (success) {
        auto h = handles_.find(q.handle);
        if (h != handles_.end()) h->second.bytes_written += q.length;
      }
      return;
    case FXP_READ:
      return;  // EOF or an error on a read: the totals at close say enough
    case FXP_CLOSE: {
      auto h = handles_.find(q.handle);
      if (h == handles_.end() || h->second.directory) {
        if (h != handles_.end()) handles_.erase(h);
        return;
      }
      auto o = op("close", h->second.path);
      o.direction = h->second.direction;
      o.mode = h->second.mode;
      o.bytes_read = h->second.bytes_read;
      o.bytes_written = h->second.bytes_written;
      o.ok = success;
      o.status = sftp_status_name(code);
      out.push_back(std::move(o));
      handles_.erase(h);
      return;
    }
    case FXP_FSETSTAT: {
      auto h = handles_.find(q.handle);
      if (h == handles_.end()) return;
      q.path = h->second.path;
      break;
    }
    default:
      break;
  }
  const char* action = nullptr;
  switch (q.type) {
    case FXP_OPEN:
      action = "open";
      break;
    case FXP_OPENDIR:
      action = "list";
      break;
    case FXP_REMOVE:
      action = "remove";
      break;
    case FXP_MKDIR:
      action = "mkdir";
      break;
    case FXP_RMDIR:
      action = "rmdir";
      break;
    case FXP_RENAME:
    case X_POSIX_RENAME:
      action = "rename";
      break;
    case FXP_SYMLINK:
      action = "symlink";
      break;
    case X_HARDLINK:
      action = "hardlink";
      break;
    case FXP_SETSTAT:
    case FXP_FSETSTAT:
    case X_LSETSTAT:
      action = "setstat";
      break;
    default:
      return;
  }
  auto o = op(action, q.path);
  o.target_path = q.target_path;
  o.mode = q.mode;
  if (q.type == FXP_OPEN) o.direction = direction_of(q.pflags);
  o.ok = success;
  o.status = sftp_status_name(code);
  out.push_back(std::move(o));
}

void SftpMetadataParser::finish(std::vector<FileOperation>& out) {
  for (auto& [handle, h] : handles_) {
    if (h.directory) continue;
    auto o = op("close", h.path);
    o.direction = h.direction;
    o.mode = h.mode;
    o.bytes_read = h.bytes_read;
    o.bytes_written = h.bytes_written;
    o.ok = false;
    o.status = "not_closed";
    out.push_back(std::move(o));
  }
  handles_.clear();
  requests_.clear();
}

}  // namespace castgate::asciicast
