#include "common/session_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace castgate {

struct SessionTable::Header {
  uint64_t high;  // slots [0, high) have been used at some time: the parent reads only those
  uint32_t health, live;  // read by the parent while the worker runs: atomic loads and stores
};

struct SessionTable::Slot {
  uint8_t used;
  uint8_t id_len;
  uint8_t has_written, written_final;
  uint8_t has_pending, pending_final;
  char id[kMaxId];
  uint64_t written_seq, pending_seq;
  char written_hash[kHashHex];
  char pending_hash[kHashHex];
};

SessionTable::SessionTable(size_t slots) : slots_(slots) {
  bytes_ = sizeof(Header) + slots * sizeof(Slot);
  mem_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem_ == MAP_FAILED)
    throw std::runtime_error(std::string("cannot map the session table: ") + std::strerror(errno));
}

SessionTable::~SessionTable() {
  munmap(mem_, bytes_);
}

SessionTable::Header* SessionTable::header() const {
  return static_cast<Header*>(mem_);
}

SessionTable::Slot* SessionTable::slot(size_t i) const {
  return reinterpret_cast<Slot*>(static_cast<char*>(mem_) + sizeof(Header)) + i;
}

std::unique_ptr<SessionTable::Lease> SessionTable::open(std::string_view session) {
  std::lock_guard lock(mu_);
  for (size_t n = 0; n < slots_; ++n) {
    size_t i = (hint_ + n) % slots_;
    Slot* s = slot(i);
    if (s->used) continue;
    std::memset(s, 0, sizeof *s);
    s->id_len = static_cast<uint8_t>(std::min(session.size(), kMaxId));
    std::memcpy(s->id, session.data(), s->id_len);
    s->used = 1;
    header()->high = std::max<uint64_t>(header()->high, i + 1);
    hint_ = i + 1;
    return std::make_unique<Lease>(*this, i);
  }
  return nullptr;
}

SessionTable::Lease::~Lease() {
  std::lock_guard lock(table_.mu_);
  table_.slot(index_)->used = 0;
  if (index_ < table_.hint_) table_.hint_ = index_;  // keep the used slots low and few pages hot
}

void SessionTable::Lease::pending(uint64_t seq, std::string_view hash, bool final) {
  Slot* s = table_.slot(index_);
  s->pending_seq = seq;
  std::memcpy(s->pending_hash, hash.data(), std::min(hash.size(), kHashHex));
  s->pending_final = final;
  s->has_pending = 1;
}

void SessionTable::Lease::written(uint64_t seq, std::string_view hash, bool final) {
  Slot* s = table_.slot(index_);
  s->written_seq = seq;
  std::memcpy(s->written_hash, hash.data(), std::min(hash.size(), kHashHex));
  s->written_final = final;
  s->has_written = 1;
}

std::vector<SessionTable::OpenChain> SessionTable::open_chains() const {
  std::vector<OpenChain> open;
  uint64_t high = std::min<uint64_t>(header()->high, slots_);
  for (size_t i = 0; i < high; ++i) {
    const Slot* s = slot(i);
    if (!s->used) continue;
    OpenChain c;
    c.session.assign(s->id, std::min<size_t>(s->id_len, kMaxId));
    if (s->has_written)
      c.written = Point{true, s->written_seq, std::string(s->written_hash, kHashHex),
                        s->written_final != 0};
    if (s->has_pending)
      c.pending = Point{true, s->pending_seq, std::string(s->pending_hash, kHashHex),
                        s->pending_final != 0};
    // A chain whose final line is whole on stdout is closed, whatever the lease said.
    if (c.written.known && c.written.final) continue;
    open.push_back(std::move(c));
  }
  return open;
}

void SessionTable::set_status(uint32_t health, uint32_t live) {
  __atomic_store_n(&header()->health, health, __ATOMIC_RELAXED);
  __atomic_store_n(&header()->live, live, __ATOMIC_RELAXED);
}

uint32_t SessionTable::health() const {
  return __atomic_load_n(&header()->health, __ATOMIC_RELAXED);
}

uint32_t SessionTable::live() const {
  return __atomic_load_n(&header()->live, __ATOMIC_RELAXED);
}

void SessionTable::clear() {
  set_status(0, 0);
  uint64_t high = std::min<uint64_t>(header()->high, slots_);
  for (size_t i = 0; i < high; ++i) slot(i)->used = 0;
  header()->high = 0;
  hint_ = 0;
}

}  // namespace castgate
