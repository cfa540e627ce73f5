#include "player/input_chunks.h"

#include <algorithm>
#include <cstring>

#include "player/decompressor.h"
#include "player/log_reader.h"

namespace castgate::player {
namespace {
// No castgate event is longer than 64 KiB, nor 1 MiB in any shape a log store keeps it in (as
// follow's LineAssembler): a line still unfinished after kMaxLine bytes at the end of a piece is
// not held, it is handed on as kLongLine (counted as a line that is not a castgate event) and its
// bytes are skipped.
constexpr size_t kMaxLine = size_t{1} << 20;
constexpr std::string_view kLongLine = "castgate-player: a line longer than 1 MiB, not read\n";
constexpr size_t kPiece = 2 * kMaxLine;  // room for a carried line and at least as much again
constexpr size_t kWaiting = 16;          // pieces of one input ready and not yet read
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
  try {
    for (unsigned t = 0; t < threads; ++t) threads_.emplace_back([this] { work(); });
  } catch (...) {
    stop();
    throw;
  }
}

InputChunks::~InputChunks() {
  stop();
}

void InputChunks::stop() {
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
    // Standard input is read by read() itself, in its turn: one reader at a time, and an input
    // before it that fails is reported before stdin has to end.
    if (paths_[i] == "-") continue;
    std::exception_ptr error;
    std::string warning;
    try {
      warning = produce(i, [&](Piece piece) { return push(i, std::move(piece)); });
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      inputs_[i].finished = true;
      inputs_[i].warning = std::move(warning);
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

std::string InputChunks::produce(size_t i, const std::function<bool(Piece)>& emit) {
  auto file = std::make_unique<MappedFile>(paths_[i], MappedFile::Content::kStored);
  auto decompressor = Decompressor::open(file->data(), paths_[i]);
  if (!decompressor) {
    std::string_view text = file->data();
    emit(Piece{std::move(file), nullptr, text});
    return {};
  }
  auto hand_over = [&](std::unique_ptr<char[]> bytes, size_t n) {
    std::string_view text(bytes.get(), n);
    return emit(Piece{nullptr, std::move(bytes), text});
  };
  // Fill a piece, hand over its whole lines, carry the rest (at most kMaxLine) into the next.
  size_t filled = 0;
  bool skipping = false;  // inside a line longer than kMaxLine, already handed on as kLongLine
  auto bytes = std::make_unique_for_overwrite<char[]>(kPiece);
  for (;;) {
    size_t n = decompressor->read(bytes.get() + filled, kPiece - filled);
    filled += n;
    if (n == 0) break;
    if (filled < kPiece) continue;
    if (skipping) {
      auto* nl = static_cast<const char*>(memchr(bytes.get(), '\n', filled));
      size_t dropped = nl ? static_cast<size_t>(nl - bytes.get()) + 1 : filled;
      std::memmove(bytes.get(), bytes.get() + dropped, filled - dropped);
      filled -= dropped;
      skipping = nl == nullptr;
      continue;
    }
    auto* nl = static_cast<const char*>(memrchr(bytes.get(), '\n', filled));
    size_t lines = nl ? static_cast<size_t>(nl - bytes.get()) + 1 : 0;
    size_t carried = filled - lines;
    auto next = std::make_unique_for_overwrite<char[]>(kPiece);
    if (carried > kMaxLine) {
      skipping = true;
      carried = 0;
    } else {
      std::memcpy(next.get(), bytes.get() + lines, carried);
    }
    if (lines > 0 && !hand_over(std::move(bytes), lines)) return {};
    if (skipping && !emit(Piece{nullptr, nullptr, kLongLine})) return {};
    bytes = std::move(next);
    filled = carried;
  }
  if (filled > 0 && !skipping && !hand_over(std::move(bytes), filled)) return {};
  return decompressor->warning();
}

void InputChunks::read(const std::function<void(std::string_view text)>& text,
                       const std::function<void(size_t input, const std::string& warning)>& done) {
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (paths_[i] == "-") {
      std::string warning = produce(i, [&](Piece piece) {
        text(piece.text);
        return true;
      });
      {
        std::lock_guard lock(mutex_);
        reading_ = i + 1;
      }
      changed_.notify_all();
      done(i, warning);
      continue;
    }
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
