// The tamper-evidence scheme shared by the gateway (which writes it) and the player (which checks
// it). Every event of a session carries castgate.seq (0, 1, 2, ...) and castgate.prev, the
// SHA-256 (hex) of the previous event's canonical line; the first event's prev is all zeros. The
// final event (session.end) also carries castgate.sig: an Ed25519 signature, by the gateway's
// recording key, over kSignatureContext followed by that event's canonical line without the sig.
#pragma once

#include <string>
#include <string_view>

namespace castgate::asciicast {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kSignatureContext = "castgate-recording-v1\n";

std::string chain_hash(std::string_view canonical_line);
// The same, into `hex` (replacing what it held).
void chain_hash(std::string_view canonical_line, std::string& hex);
std::string signature_payload(std::string_view canonical_line_without_sig);
// Short, stable name of a recording public key (raw 32 bytes): "ed25519:" + 16 hex digits.
std::string recording_key_id(std::string_view public_key_raw);

}  // namespace castgate::asciicast
