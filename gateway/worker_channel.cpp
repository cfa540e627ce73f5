#include "gateway/worker_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "gateway/signer_protocol.h"
#include "gateway/ssh_wire.h"

namespace castgate::worker_channel {

std::string encode(const Message& m) {
  ssh::WireWriter w;
  w.u8(static_cast<uint8_t>(m.type));
  if (m.type == Type::kChainStarted || m.type == Type::kRetire) return w.take();
  if (m.type == Type::kAdopt) w.u32(m.listener);
  w.string(m.address);
  if (m.type == Type::kAdopt) w.u32(m.port);
  return w.take();
}

std::optional<Message> decode(std::string_view packet) {
  if (packet.size() > kMaxMessage) return std::nullopt;
  ssh::WireReader r(packet);
  uint8_t type = 0;
  if (!r.u8(type)) return std::nullopt;
  Message m;
  m.type = static_cast<Type>(type);
  if (m.type == Type::kChainStarted || m.type == Type::kRetire)
    return r.empty() ? std::optional<Message>(m) : std::nullopt;
  if (m.type != Type::kAdopt && m.type != Type::kSignedIn) return std::nullopt;
  std::string_view address;
  if (m.type == Type::kAdopt && !r.u32(m.listener)) return std::nullopt;
  if (!r.string(address) || address.empty() || address.size() > kMaxAddress) return std::nullopt;
  for (char c : address)  // an IPv4 or IPv6 address, nothing else
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':'))
      return std::nullopt;
  m.address = std::string(address);
  if (m.type == Type::kAdopt && (!r.u32(m.port) || m.port > 65535)) return std::nullopt;
  if (!r.empty()) return std::nullopt;
  return m;
}

bool send(int socket, const Message& m, int fd) {
  std::string packet = encode(m);
  return signer::send_packet(socket, packet, fd, 0) == static_cast<ssize_t>(packet.size());
}

ssize_t receive(int socket, std::string& packet, int& fd) {
  packet.resize(kMaxMessage + 1);
  auto got = signer::receive_packet(socket, packet, MSG_DONTWAIT);
  // One descriptor per message at most: the first is kept, any other is closed with `got`.
  fd = got.fds.empty() ? -1 : got.fds[0].release();
  packet.resize(got.size > 0 ? static_cast<size_t>(got.size) : 0);
  errno = got.error;
  return got.size;
}

}  // namespace castgate::worker_channel
