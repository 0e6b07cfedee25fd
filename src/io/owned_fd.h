// owned_fd: a file descriptor owned by one object at a time and closed unless
// taken (e.g. an accepted connection on its way from the acceptor's io_context to
// the one that adopts it: see runtime.h).
#pragma once

#include <unistd.h>

#include <boost/system/error_code.hpp>
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

// Gives `fd` to `socket` (an Asio socket, on the thread of its io_context): taken
// when the socket accepts it, left to close with `fd` when it does not. Returns
// what assign() reported.
template <class Socket, class Protocol>
boost::system::error_code adopt(Socket& socket, const Protocol& protocol, owned_fd& fd) {
  boost::system::error_code ec;
  socket.assign(protocol, fd.get(), ec);
  if (!ec) fd.take();
  return ec;
}

}  // namespace outrider::io
