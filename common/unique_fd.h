// Owns one file descriptor: closed when the owner goes, once.
#pragma once

#include <unistd.h>

#include <utility>

namespace castgate {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(long fd) : fd_(static_cast<int>(fd)) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Gives the descriptor up to a new owner (libssh, a child process); nothing is closed.
  int release() { return std::exchange(fd_, -1); }
  void reset(long fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = static_cast<int>(fd);
  }

 private:
  int fd_ = -1;
};

}  // namespace castgate
