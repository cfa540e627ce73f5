// "Sign in once": after a device sign-in, the public key the client proved it holds on that very
// connection is bound to the identity for a while, so that a loop of scp calls does not open a
// browser each time. Only that key, and by default only from the same source (IPv4 address or
// IPv6 /64): a key copied off the laptop is not enough from elsewhere. In memory only (per
// replica; the Helm chart sets client-IP affinity); tokens are never kept.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/identity.h"

namespace castgate {

class KeyBindings {
 public:
  // `clock` says which bindings have expired when the table is full.
  explicit KeyBindings(const Clock& clock = SystemClock::instance()) : clock_(clock) {}

  // `source`: the address the key may be used from (its source block); empty for any.
  void bind(const std::string& key_blob, const Identity& identity,
            std::chrono::system_clock::time_point expires, const std::string& source);
  // The identity bound to the key, if the binding has not expired (checked at `now`) and
  // `source` may use it.
  // `expires`, if given, receives when the binding ends.
  std::optional<Identity> find(const std::string& key_blob,
                               std::chrono::system_clock::time_point now, const std::string& source,
                               std::chrono::system_clock::time_point* expires = nullptr);
  // Ends the key's binding, if any (its sign-in did not satisfy a rule: the next connection
  // signs in afresh).
  void forget(const std::string& key_blob);
  size_t size();

 private:
  struct Binding {
    Identity identity;
    std::chrono::system_clock::time_point expires;
    std::string source_block;  // empty: any source
  };
  const Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Binding> by_key_;
};

}  // namespace castgate
