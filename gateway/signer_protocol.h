// The protocol between castgate and its signer process (signer.h): one message per
// SOCK_SEQPACKET packet, each
//   u32 length of what follows | u8 version (1) | u8 type | u32 request id | body
// with the body in SSH wire encoding (ssh_wire.h). An answer carries its request's id. Decoding is
// strict: a wrong length, version or type, a short or over-long body is an error, never a guess.
//
// castgate's parent holds the first connection (the control connection); each of its worker
// processes gets a connection of its own, so that answers never cross between processes: the
// parent makes a socketpair and passes one end with kAttach, as SCM_RIGHTS ancillary data of that
// packet (its only descriptor). The signer takes kAttach from the control connection only; it
// serves certificates and lines on every connection.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace castgate::signer {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kMaxMessage = 65536 + 1024;  // a line of --max-line (64 KiB at most)

enum class Type : uint8_t {
  kHello = 1,            // (empty) -> kHelloAnswer
  kSignCertificate = 2,  // CertificateOrder -> kCertificate
  kSignLine = 3,         // string line -> kSignature
  kAttach = 4,           // (empty; one AF_UNIX SOCK_SEQPACKET socket as SCM_RIGHTS) -> kAttached
  kHelloAnswer = 0x81,   // string CA public key blob (may be empty), string recording public key
  kCertificate = 0x82,   // u64 serial, string certificate blob
  kSignature = 0x83,     // string signature (64 bytes)
  kAttached = 0x84,      // (empty): the passed socket is a connection of its own now
  kRefused = 0xff,       // string reason
};

// Extensions castgate may ask for: a fixed set, as bits.
enum Extension : uint32_t {
  kPermitPty = 1,
  kPermitPortForwarding = 2,
};
inline constexpr uint32_t kKnownExtensions = kPermitPty | kPermitPortForwarding;
// Their names in a certificate ("permit-pty", ...), in that order.
std::vector<std::string> extension_names(uint32_t bits);

struct Message {
  Type type{};
  uint32_t id = 0;
  std::string body;
};

// Why a packet or a body did not decode; the Error's detail is the refusal's reason.
enum class ProtocolError {
  kTooLong,
  kMalformed,  // a length, field or body that does not add up
  kUnsupportedVersion,
  kUnknownType,
};
std::string_view to_string(ProtocolError e);
template <class T>
using ProtocolResult = Result<T, Error<ProtocolError>>;

std::string encode(const Message& m);
ProtocolResult<Message> decode(std::string_view packet);

// A user certificate for one principal and one session key.
struct CertificateOrder {
  std::string public_key_blob;  // "ssh-ed25519" blob of the session's fresh key
  std::string key_id;
  std::string principal;  // exactly one login
  uint64_t valid_after = 0;
  uint64_t valid_before = 0;   // Unix seconds
  uint32_t extensions = 0;     // Extension bits
  std::string source_address;  // "" or the address list for the source-address option
};

std::string encode_order(const CertificateOrder& o);
ProtocolResult<CertificateOrder> decode_order(std::string_view body);

// Bodies that are one string, or a u64 and a string.
std::string encode_string(std::string_view s);
std::optional<std::string> decode_string(std::string_view body);
std::string encode_strings(std::string_view a, std::string_view b);
bool decode_strings(std::string_view body, std::string& a, std::string& b);
std::string encode_certificate(uint64_t serial, std::string_view blob);
bool decode_certificate(std::string_view body, uint64_t& serial, std::string& blob);

using castgate::UniqueFd;

// One packet on a SOCK_SEQPACKET socket, with `passed` as SCM_RIGHTS unless it is -1. MSG_NOSIGNAL
// is added to `flags`; EINTR is retried. Returns sendmsg's result (errno set when -1).
ssize_t send_packet(int socket, std::string_view packet, int passed, int flags);

// One packet received into `buffer` (its size is the most taken; a longer packet is cut to it).
// recvmsg with MSG_CMSG_CLOEXEC, EINTR retried: every descriptor that came with the packet is
// owned by `fds`, so whatever the receiver does not keep is closed, never leaked into a child.
struct Received {
  ssize_t size = -1;  // recvmsg's result: the packet's bytes, 0 at the end, -1 on error
  int error = 0;      // errno when size is -1
  std::vector<UniqueFd> fds;
  bool truncated = false;  // MSG_CTRUNC: the kernel dropped descriptors that did not fit
};
Received receive_packet(int socket, std::string& buffer, int flags);

}  // namespace castgate::signer
