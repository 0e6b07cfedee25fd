#include "http/detail/message_parser.h"

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>
#include <string>
#include <string_view>

namespace outrider::http::detail {
namespace {

// Feeds `wire` to `p` in pieces of `step` bytes (as reads would), as basic_parser
// wants: what it did not consume comes again with the next bytes.
template <bool isRequest>
boost::system::error_code feed(message_parser<isRequest>& p, std::string_view wire,
                               std::size_t step) {
  boost::system::error_code ec;
  std::string pending;
  std::size_t at = 0;
  while (!p.is_done()) {
    if (at < wire.size()) {
      const auto n = std::min(step, wire.size() - at);
      pending.append(wire.substr(at, n));
      at += n;
    } else if (pending.empty()) {
      break;
    }
    const auto used = p.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (at >= wire.size()) break;
      continue;
    }
    if (ec) return ec;
  }
  return ec;
}

TEST(message_parser, a_request_fills_the_head_and_body_with_fields_in_order) {
  for (std::size_t step : {1, 7, 4096}) {
    message_parser<true> p;
    const auto ec = feed(p,
                         "POST /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n"
                         "Content-Length: 5\r\n\r\nhello",
                         step);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(p.is_done());
    const request& r = p.get();
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/a/b?c=d");
    EXPECT_EQ(r.version, 11u);
    EXPECT_EQ(r.body, "hello");
    std::string seen;
    for (const auto& f : r.headers) seen += f.name + "=" + f.value + ";";
    EXPECT_EQ(seen, "Host=x;X-Two=1;x-two=2;Content-Length=5;");
    EXPECT_TRUE(p.keep_alive());
  }
}

TEST(message_parser, a_chunked_response_body_is_joined) {
  message_parser<false> p;
  const auto ec = feed(p,
                       "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
                       5);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.get().status, 201);
  EXPECT_EQ(p.get().body, "abcde");
  EXPECT_TRUE(p.keep_alive());
}

TEST(message_parser, keep_alive_follows_version_connection_and_eof_framing) {
  {
    message_parser<false> p;  // the body ends with the connection: never reusable
    ASSERT_FALSE(feed(p, "HTTP/1.1 200 OK\r\n\r\nabc", 4096));
    EXPECT_FALSE(p.keep_alive());
  }
  {
    message_parser<true> p;
    ASSERT_FALSE(feed(p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 4096));
    EXPECT_FALSE(p.keep_alive());
  }
  {
    message_parser<true> p;
    ASSERT_FALSE(feed(p, "GET / HTTP/1.0\r\n\r\n", 4096));
    EXPECT_FALSE(p.keep_alive());
    EXPECT_EQ(p.get().version, 10u);
  }
  {
    message_parser<true> p;
    ASSERT_FALSE(feed(p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 4096));
    EXPECT_TRUE(p.keep_alive());
  }
}

// Beast's grammar and framing checks stay: a smuggling attempt is an error.
TEST(message_parser, conflicting_length_and_chunked_is_an_error) {
  message_parser<true> p;
  const auto ec = feed(p,
                       "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n0\r\n\r\n",
                       4096);
  EXPECT_TRUE(ec);
  message_parser<true> q;
  EXPECT_TRUE(feed(q, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 4096));
}

// After the head, a window takes the body piece by piece (need_buffer when full),
// as the streamed body reads it; `body` stays empty.
TEST(message_parser, a_window_takes_the_body_after_the_head) {
  message_parser<false> p;
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  boost::system::error_code ec;
  auto used = p.put(boost::asio::buffer(wire), ec);  // not eager: stops after the head
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(p.is_header_done());
  std::string_view rest(wire.data() + used, wire.size() - used);
  char window[4];
  std::string got;
  while (!p.is_done()) {
    p.set_window(window, sizeof window);
    used = p.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    ASSERT_FALSE(ec) << ec.message();
    rest.remove_prefix(used);
    got.append(window, sizeof window - p.window_left());
  }
  EXPECT_EQ(got, "0123456789");
  EXPECT_TRUE(p.get().body.empty());
}

}  // namespace
}  // namespace outrider::http::detail
