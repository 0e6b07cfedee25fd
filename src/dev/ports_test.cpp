#include "dev/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <gtest/gtest.h>

namespace outrider::dev {
namespace {

TEST(port_allocator, picks_distinct_free_ports) {
  port_allocator ports;
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 20; ++i) {
    auto p = ports.pick();
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_NE(*p, 0);
    EXPECT_TRUE(seen.insert(*p).second);
    EXPECT_TRUE(port_is_free(*p));
  }
}

TEST(port_allocator, never_hands_out_a_port_twice_even_if_the_kernel_repeats_it) {
  std::deque<std::uint16_t> offered{4000, 4000, 4001, 4000, 4002};
  port_allocator ports(
      [&offered]() -> result<std::uint16_t> {
        if (offered.empty()) return error(errc::unavailable, "none left");
        const auto p = offered.front();
        offered.pop_front();
        return p;
      },
      [](std::uint16_t) { return true; });
  EXPECT_EQ(*ports.pick(), 4000);
  EXPECT_EQ(*ports.pick(), 4001);
  EXPECT_EQ(*ports.pick(), 4002);
  EXPECT_FALSE(ports.pick());
}

TEST(port_allocator, configured_ports_are_reserved_once_and_must_be_free) {
  port_allocator ports([]() -> result<std::uint16_t> { return std::uint16_t{5000}; },
                       [](std::uint16_t p) { return p != 6000; });
  EXPECT_EQ(*ports.assign(7000, "app 'a'"), 7000);
  auto again = ports.assign(7000, "app 'b'");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::already_exists);
  auto busy = ports.assign(6000, "the broker");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, errc::unavailable);
  EXPECT_NE(busy.error().message.find("the broker"), std::string::npos);
  EXPECT_EQ(*ports.assign(0, "picked"), 5000);  // 0: picked
  EXPECT_FALSE(ports.reserve(5000, "c"));       // picked ports are taken too
}

TEST(port_is_free, a_listening_port_is_not_free) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::uint16_t port = ntohs(addr.sin_port);
  EXPECT_FALSE(port_is_free(port));
  port_allocator ports;
  EXPECT_FALSE(ports.reserve(port, "x"));
  ::close(fd);
}

}  // namespace
}  // namespace outrider::dev
