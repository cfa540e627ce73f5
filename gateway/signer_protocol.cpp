#include "gateway/signer_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "gateway/ssh_wire.h"

namespace castgate::signer {

namespace {

bool known_type(uint8_t t) {
  switch (static_cast<Type>(t)) {
    case Type::kHello:
    case Type::kSignCertificate:
    case Type::kSignLine:
    case Type::kAttach:
    case Type::kHelloAnswer:
    case Type::kCertificate:
    case Type::kSignature:
    case Type::kAttached:
    case Type::kRefused:
      return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> extension_names(uint32_t bits) {
  std::vector<std::string> out;
  if (bits & kPermitPty) out.push_back("permit-pty");
  if (bits & kPermitPortForwarding) out.push_back("permit-port-forwarding");
  return out;
}

std::string encode(const Message& m) {
  ssh::WireWriter w;
  w.u32(static_cast<uint32_t>(1 + 1 + 4 + m.body.size()));
  w.u8(kVersion);
  w.u8(static_cast<uint8_t>(m.type));
  w.u32(m.id);
  w.raw(m.body);
  return w.take();
}

std::string_view to_string(ProtocolError e) {
  switch (e) {
    case ProtocolError::kTooLong:
      return "too long";
    case ProtocolError::kMalformed:
      return "malformed";
    case ProtocolError::kUnsupportedVersion:
      return "unsupported version";
    case ProtocolError::kUnknownType:
      return "unknown type";
  }
  return "unknown";
}

ProtocolResult<Message> decode(std::string_view packet) {
  if (packet.size() > kMaxMessage) return fail(ProtocolError::kTooLong, "message too long");
  ssh::WireReader r(packet);
  uint32_t length = 0;
  uint8_t version = 0, type = 0;
  Message m;
  if (!r.u32(length) || length != packet.size() - 4 || !r.u8(version) || !r.u8(type) ||
      !r.u32(m.id))
    return fail(ProtocolError::kMalformed, "malformed message");
  if (version != kVersion)
    return fail(ProtocolError::kUnsupportedVersion,
                "unsupported protocol version " + std::to_string(version));
  if (!known_type(type))
    return fail(ProtocolError::kUnknownType, "unknown message type " + std::to_string(type));
  m.type = static_cast<Type>(type);
  m.body = std::string(r.rest());
  return m;
}

std::string encode_order(const CertificateOrder& o) {
  ssh::WireWriter w;
  w.string(o.public_key_blob);
  w.string(o.key_id);
  w.string(o.principal);
  w.u64(o.valid_after);
  w.u64(o.valid_before);
  w.u32(o.extensions);
  w.string(o.source_address);
  return w.take();
}

ProtocolResult<CertificateOrder> decode_order(std::string_view body) {
  ssh::WireReader r(body);
  std::string_view key, key_id, principal, source;
  CertificateOrder o;
  if (!r.string(key) || !r.string(key_id) || !r.string(principal) || !r.u64(o.valid_after) ||
      !r.u64(o.valid_before) || !r.u32(o.extensions) || !r.string(source) || !r.empty())
    return fail(ProtocolError::kMalformed, "malformed certificate order");
  o.public_key_blob = key;
  o.key_id = key_id;
  o.principal = principal;
  o.source_address = source;
  return o;
}

std::string encode_string(std::string_view s) {
  ssh::WireWriter w;
  w.string(s);
  return w.take();
}

std::optional<std::string> decode_string(std::string_view body) {
  ssh::WireReader r(body);
  std::string_view s;
  if (!r.string(s) || !r.empty()) return std::nullopt;
  return std::string(s);
}

std::string encode_strings(std::string_view a, std::string_view b) {
  ssh::WireWriter w;
  w.string(a);
  w.string(b);
  return w.take();
}

bool decode_strings(std::string_view body, std::string& a, std::string& b) {
  ssh::WireReader r(body);
  std::string_view x, y;
  if (!r.string(x) || !r.string(y) || !r.empty()) return false;
  a = x;
  b = y;
  return true;
}

std::string encode_certificate(uint64_t serial, std::string_view blob) {
  ssh::WireWriter w;
  w.u64(serial);
  w.string(blob);
  return w.take();
}

bool decode_certificate(std::string_view body, uint64_t& serial, std::string& blob) {
  ssh::WireReader r(body);
  std::string_view b;
  if (!r.u64(serial) || !r.string(b) || !r.empty()) return false;
  blob = b;
  return true;
}

ssize_t send_packet(int socket, std::string_view packet, int passed, int flags) {
  iovec iov{const_cast<char*>(packet.data()), packet.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (passed >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &msg, flags | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

Received receive_packet(int socket, std::string& buffer, int flags) {
  Received out;
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for a few descriptors: one is all any packet may carry, and more than fit are dropped by
  // the kernel (MSG_CTRUNC), never installed here.
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  for (;;) {
    out.size = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
    if (out.size < 0 && errno == EINTR) continue;
    break;
  }
  if (out.size < 0) {
    out.error = errno;
    return out;
  }
  out.truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  return out;
}

}  // namespace castgate::signer
