// Where each of a worker process's record chains has reached on stdout, kept in memory shared with
// the parent. When a worker process dies, the parent reads its table and ends every chain the
// worker left open with a signed closing event that continues it (seq, prev), so a record the
// gateway lost reads differently from one whose end someone deleted.
//
// The parent maps the table before it forks the worker. In the worker, a chain leases a slot while
// it is open; the stdout writer marks a line "pending" before handing it to write(2) and
// "written" once it is whole on stdout, both under the output lock. The parent reads the table
// only once the worker is dead (no concurrent writer), so plain stores are enough.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace castgate {

class SessionTable {
 public:
  static constexpr size_t kMaxId = 63;    // session ids are short ("worker-…", random hex)
  static constexpr size_t kHashHex = 64;  // a chain hash, SHA-256 in hex

  struct Point {
    bool known = false;
    uint64_t seq = 0;
    std::string hash;
    bool final = false;
  };
  // An open chain as the parent finds it after the worker died.
  struct OpenChain {
    std::string session;
    Point written;  // the last line known to be whole on stdout
    Point pending;  // the last line handed to write(2): differs from written only if the worker
                    // died during a write
  };

  // One chain's slot; freed when the lease goes. Used by one writer thread at a time.
  class Lease {
   public:
    Lease(SessionTable& table, size_t index) : table_(table), index_(index) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    void pending(uint64_t seq, std::string_view hash, bool final);
    void written(uint64_t seq, std::string_view hash, bool final);

   private:
    SessionTable& table_;
    size_t index_;
  };

  // Maps `slots` slots of shared anonymous memory (touched only as they are used).
  explicit SessionTable(size_t slots);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // Worker: a slot for a new chain; null when the table is full (the session must be refused).
  std::unique_ptr<Lease> open(std::string_view session);
  // Parent, after the worker died: the chains it left without their final line on stdout.
  std::vector<OpenChain> open_chains() const;
  // Parent, before the table serves a new worker.
  void clear();
  size_t capacity() const { return slots_; }

  // Worker, now and then; parent, any time: how its stdout writer is (0 healthy, 1 stalled,
  // 2 broken: asciicast::SinkHealth) and how many sessions it serves.
  void set_status(uint32_t health, uint32_t live);
  uint32_t health() const;
  uint32_t live() const;

 private:
  struct Slot;
  Slot* slot(size_t i) const;

  struct Header;
  Header* header() const;

  size_t slots_;
  void* mem_ = nullptr;
  size_t bytes_ = 0;
  std::mutex mu_;    // worker-local: guards allocation
  size_t hint_ = 0;  // under mu_: where to look for a free slot first
};

}  // namespace castgate
