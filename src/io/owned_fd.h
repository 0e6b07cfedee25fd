// owned_fd: a file descriptor owned by one object at a time and closed unless
// taken (e.g. an accepted connection on its way from the acceptor's io_context to
// the one that adopts it: see runtime.h).
#pragma once

#include <unistd.h>

#include <utility>

namespace outrider::io {

class owned_fd {
 public:
  explicit owned_fd(int fd) noexcept : fd_(fd) {}
  owned_fd(owned_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  owned_fd& operator=(owned_fd&&) = delete;
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() {
    if (fd_ >= 0) ::close(fd_);
  }

  int get() const noexcept { return fd_; }
  // Gives up ownership (the caller's now).
  int take() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace outrider::io
