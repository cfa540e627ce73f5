#include "gateway/key_bindings.h"

#include "gateway/admission.h"

namespace castgate {
namespace {
constexpr size_t kMaxBindings = 100000;
}

void KeyBindings::bind(const std::string& key_blob, const Identity& identity,
                       std::chrono::system_clock::time_point expires, const std::string& source) {
  std::lock_guard lock(mu_);
  if (by_key_.size() >= kMaxBindings) {
    auto now = clock_.now();
    for (auto it = by_key_.begin(); it != by_key_.end();)
      it = it->second.expires <= now ? by_key_.erase(it) : std::next(it);
    if (by_key_.size() >= kMaxBindings) by_key_.clear();
  }
  by_key_[key_blob] = Binding{identity, expires, source.empty() ? "" : source_block(source)};
}

std::optional<Identity> KeyBindings::find(const std::string& key_blob,
                                          std::chrono::system_clock::time_point now,
                                          const std::string& source,
                                          std::chrono::system_clock::time_point* expires) {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key_blob);
  if (it == by_key_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    by_key_.erase(it);
    return std::nullopt;
  }
  if (!it->second.source_block.empty() && it->second.source_block != source_block(source))
    return std::nullopt;
  if (expires) *expires = it->second.expires;
  return it->second.identity;
}

void KeyBindings::forget(const std::string& key_blob) {
  std::lock_guard lock(mu_);
  by_key_.erase(key_blob);
}

size_t KeyBindings::size() {
  std::lock_guard lock(mu_);
  return by_key_.size();
}

}  // namespace castgate
