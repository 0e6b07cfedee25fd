#include "dev/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/core.h>

namespace outrider::dev {
namespace {

// Attempts before pick() gives up on getting a port not handed out yet.
constexpr int max_pick_attempts = 100;

// Binds 127.0.0.1:port; returns the bound port or 0 (errno set).
std::uint16_t bind_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::uint16_t bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      bound = ntohs(addr.sin_port);
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return bound;
}

}  // namespace

bool port_is_free(std::uint16_t port) {
  return port != 0 && bind_loopback(port) == port;
}

result<std::uint16_t> ephemeral_port() {
  const std::uint16_t port = bind_loopback(0);
  if (port == 0)
    return error(errc::unavailable,
                 fmt::format("cannot bind a port on 127.0.0.1: {}", std::strerror(errno)));
  return port;
}

port_allocator::port_allocator(port_source source, free_check is_free)
    : source_(std::move(source)), is_free_(std::move(is_free)) {}

status port_allocator::reserve(std::uint16_t port, const std::string& owner) {
  if (taken_.count(port) != 0)
    return error(errc::already_exists,
                 fmt::format("port {} of {} is already given to another process", port, owner));
  if (!is_free_(port))
    return error(errc::unavailable,
                 fmt::format("port {} of {} is in use by another program", port, owner));
  taken_.insert(port);
  return {};
}

result<std::uint16_t> port_allocator::assign(std::uint16_t configured, const std::string& owner) {
  if (configured == 0) return pick();
  OUTRIDER_TRY(reserve(configured, owner));
  return configured;
}

result<std::uint16_t> port_allocator::pick() {
  for (int attempt = 0; attempt < max_pick_attempts; ++attempt) {
    auto port = source_();
    if (!port) return port;
    if (taken_.insert(*port).second) return *port;
  }
  return error(errc::unavailable, "no free port on 127.0.0.1 that is not already handed out");
}

}  // namespace outrider::dev
