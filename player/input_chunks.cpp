#include "player/input_chunks.h"

#include <algorithm>
#include <cstring>

#include "player/decompressor.h"
#include "player/log_reader.h"

namespace castgate::player {
namespace {
constexpr size_t kPiece = size_t{1} << 20;
constexpr size_t kWaiting = 4;  // pieces of one input ready and not yet read
}  // namespace

struct InputChunks::Piece {
  std::unique_ptr<MappedFile> file;  // a plain input, whole
  std::unique_ptr<char[]> bytes;     // decompressed lines
  std::string_view text;
};

struct InputChunks::Input {
  std::deque<Piece> ready;
  bool finished = false;  // every piece is in `ready`, or `error` is set
  std::string warning;
  std::exception_ptr error;
};

unsigned InputChunks::default_threads() {
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

InputChunks::InputChunks(std::vector<std::string> paths, unsigned threads)
    : paths_(std::move(paths)), inputs_(paths_.size()) {
  threads =
      std::clamp<unsigned>(threads, 1, static_cast<unsigned>(std::max<size_t>(1, paths_.size())));
  window_ = threads + 1;
  for (unsigned t = 0; t < threads; ++t) threads_.emplace_back([this] { work(); });
}

InputChunks::~InputChunks() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : threads_) t.join();
}

void InputChunks::work() {
  for (;;) {
    size_t i;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(
          lock, [&] { return stopping_ || next_ >= paths_.size() || next_ < reading_ + window_; });
      if (stopping_ || next_ >= paths_.size()) return;
      i = next_++;
    }
    std::exception_ptr error;
    try {
      produce(i);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      inputs_[i].finished = true;
      inputs_[i].error = error;
    }
    changed_.notify_all();
  }
}

bool InputChunks::push(size_t i, Piece piece) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return stopping_ || inputs_[i].ready.size() < kWaiting; });
  if (stopping_) return false;
  inputs_[i].ready.push_back(std::move(piece));
  lock.unlock();
  changed_.notify_all();
  return true;
}

void InputChunks::produce(size_t i) {
  auto file = std::make_unique<MappedFile>(paths_[i], MappedFile::Content::kStored);
  auto decompressor = Decompressor::open(file->data(), paths_[i]);
  if (!decompressor) {
    std::string_view text = file->data();
    push(i, Piece{std::move(file), nullptr, text});
    return;
  }
  auto hand_over = [&](std::unique_ptr<char[]> bytes, size_t n) {
    std::string_view text(bytes.get(), n);
    return push(i, Piece{nullptr, std::move(bytes), text});
  };
  // Fill a piece, hand over its whole lines, carry the rest into the next.
  size_t size = kPiece, filled = 0;
  auto bytes = std::make_unique_for_overwrite<char[]>(size);
  for (;;) {
    size_t n = decompressor->read(bytes.get() + filled, size - filled);
    filled += n;
    if (n == 0) break;
    if (filled < size) continue;
    auto* nl = static_cast<const char*>(memrchr(bytes.get(), '\n', filled));
    size_t lines = nl ? static_cast<size_t>(nl - bytes.get()) + 1 : 0;
    size_t carried = filled - lines;
    // A line longer than the piece makes the next piece larger.
    size = std::max(kPiece, 2 * carried);
    auto next = std::make_unique_for_overwrite<char[]>(size);
    std::memcpy(next.get(), bytes.get() + lines, carried);
    if (lines > 0 && !hand_over(std::move(bytes), lines)) return;
    bytes = std::move(next);
    filled = carried;
  }
  if (filled > 0 && !hand_over(std::move(bytes), filled)) return;
  std::lock_guard lock(mutex_);
  inputs_[i].warning = decompressor->warning();
}

void InputChunks::read(const std::function<void(std::string_view text)>& text,
                       const std::function<void(size_t input, const std::string& warning)>& done) {
  for (size_t i = 0; i < paths_.size(); ++i) {
    for (;;) {
      Piece piece;
      {
        std::unique_lock lock(mutex_);
        Input& in = inputs_[i];
        changed_.wait(lock, [&] { return !in.ready.empty() || in.finished; });
        if (in.ready.empty()) {
          if (in.error) std::rethrow_exception(in.error);
          break;
        }
        piece = std::move(in.ready.front());
        in.ready.pop_front();
      }
      changed_.notify_all();
      text(piece.text);
    }
    std::string warning;
    {
      std::lock_guard lock(mutex_);
      warning = std::move(inputs_[i].warning);
      reading_ = i + 1;
    }
    changed_.notify_all();
    done(i, warning);
  }
}

}  // namespace castgate::player
