// "Sign in once": after a device sign-in, the public key the client proved it holds is bound to
// the identity for a while, so that a loop of scp calls does not open a browser each time. In
// memory only (per replica; the Helm chart sets client-IP affinity); tokens are never kept.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/identity.h"

namespace castgate {

class KeyBindings {
 public:
  void bind(const std::string& key_blob, const Identity& identity,
            std::chrono::system_clock::time_point expires);
  // The identity bound to the key, if the binding has not expired (checked at `now`).
  std::optional<Identity> find(const std::string& key_blob,
                               std::chrono::system_clock::time_point now);
  size_t size();

 private:
  struct Binding {
    Identity identity;
    std::chrono::system_clock::time_point expires;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Binding> by_key_;
};

}  // namespace castgate
