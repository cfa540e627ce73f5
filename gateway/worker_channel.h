// The channel between castgate's parent process and one of its worker processes: a
// SOCK_SEQPACKET socketpair, one message per packet, in SSH wire encoding (ssh_wire.h).
//   parent -> worker  kAdopt:    u8 1 | u32 listener index | string peer address | u32 peer port,
//                                with the accepted connection's descriptor as SCM_RIGHTS
//   worker -> parent  kSignedIn: u8 2 | string peer address — a connection it adopted signed in
//                                or ended, so it no longer counts against --max-startups
//   worker -> parent  kChainStarted: u8 3 — its own chain has its first line (worker.start): the
//                                parent's checkpoints list the chain from then on (checkpoint.h)
//   parent -> worker  kRetire:   u8 4 — the configuration was reloaded and another worker took
//                                this one's place: it gets no more connections, serves those it
//                                has under the rules they started with, and ends after the last
// The parent accepts and admits connections (admission.h) and hands each to a worker; the worker
// is the less trusted side, so the parent's decoding is strict, and what a worker says is checked
// against what the parent gave it (a worker can only release the startups it holds).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace castgate::worker_channel {

inline constexpr size_t kMaxMessage = 512;
inline constexpr size_t kMaxAddress = 64;

enum class Type : uint8_t { kAdopt = 1, kSignedIn = 2, kChainStarted = 3, kRetire = 4 };

struct Message {
  Type type{};
  uint32_t listener = 0;  // kAdopt
  std::string address;    // the peer's IP address
  uint32_t port = 0;      // kAdopt
};

std::string encode(const Message& m);
// Strict: an unknown type, a field out of range or trailing bytes is nullopt.
std::optional<Message> decode(std::string_view packet);

// Sends one message, with `fd` attached when it is >= 0. Returns false (errno set) if the packet
// was not sent whole; never raises SIGPIPE.
bool send(int socket, const Message& m, int fd = -1);
// Receives one packet into `packet` (resized to what arrived); `fd` gets a descriptor that came
// with it (-1 if none; any more are closed). Returns the recvmsg result (0: the peer closed).
ssize_t receive(int socket, std::string& packet, int& fd);

}  // namespace castgate::worker_channel
