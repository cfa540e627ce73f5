// What `list` and `commands` read: every input once, front to back, in pieces of whole lines.
// A plain file is one piece, its mapping. Compressed inputs are decompressed by background threads
// ahead of the reader, into pieces of 2 MiB, without a temporary file: the reader scans one piece
// while the next is inflated, and on several files (a bucket's objects) the threads inflate
// several at once. Standard input ("-") is read by the reader's own thread in its turn.
// Memory stays bounded: at most threads + 1 inputs are open at a time, each with at most 16
// pieces waiting (enough for the next inputs to be inflated meanwhile) and 2 being filled, so at
// most (threads + 1) x 36 MiB, 108 MiB on two cores. A line that does not fit a piece with the
// start of the piece (2 MiB; at least 1 MiB of it is left for a line carried over; no castgate
// event is longer than 64 KiB) is not held but skipped, and counted as one line that is not a
// castgate event.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace castgate::player {

class InputChunks {
 public:
  // Starts `threads` threads (at least one); see expand_inputs for `paths`.
  explicit InputChunks(std::vector<std::string> paths, unsigned threads = default_threads());
  ~InputChunks();  // stops and joins the threads
  InputChunks(const InputChunks&) = delete;
  InputChunks& operator=(const InputChunks&) = delete;

  // Calls `text(piece)` for every piece of every input, in order, and `done(input, warning)`
  // after an input's last piece (`warning`: a compressed input cut short or padded, said as
  // MappedFile says it; empty otherwise). Throws, in order, what opening or decompressing an
  // input threw, as MappedFile would. Call once.
  void read(const std::function<void(std::string_view text)>& text,
            const std::function<void(size_t input, const std::string& warning)>& done);

  // The machine's cores, at most 4.
  static unsigned default_threads();

 private:
  struct Piece;
  struct Input;
  void work();
  void stop();  // stops and joins the threads
  // Opens input i and hands its pieces to `emit` (false: stop) in order; returns its warning.
  std::string produce(size_t i, const std::function<bool(Piece)>& emit);
  bool push(size_t i, Piece piece);  // false once stopping

  std::vector<std::string> paths_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Input> inputs_;  // guarded by mutex_, one per path
  size_t next_ = 0;            // the next input a thread takes
  size_t reading_ = 0;         // the input read() is at
  size_t window_ = 0;          // inputs open at most
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: joined before the rest is destroyed
};

}  // namespace castgate::player
