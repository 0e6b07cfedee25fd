// Test support for the http tests that play a raw TCP peer (a server that reads a
// request and closes, answers byte by byte, ...). Included by tests only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <gtest/gtest.h>

namespace outrider::http::test_support {

// A TCP socket listening on 127.0.0.1 at an ephemeral port; sets `port` to it. The
// caller accepts on it and closes it.
inline int loopback_listener(std::uint16_t& port, int backlog = 8) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd, backlog), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace outrider::http::test_support
