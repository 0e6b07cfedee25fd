// direct_io: reads, parses and writes that skip Asio's completion machinery when
// the socket can answer at once (internal to server.cpp and client.cpp).
//
// Beast's async read posts its completion even when the buffer already holds the
// whole message, and an async write posts its completion even when the kernel took
// every byte at once. On a small request each of those is a scheduler round trip
// (a handler allocation and a coroutine resume). Here the socket is non-blocking:
// a write goes out now and only a remainder waits for writability; reads go
// with Asio's read on the socket itself, which tries the socket at once and waits
// for readability only when nothing is there.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <string_view>

namespace outrider::http::detail {

// Feeds the bytes already in `buffer` to `parser` without any I/O. Stops at the
// end of the head (a non-eager parser) or of the message, or when it needs more
// bytes. Returns the parser's error; never need_more.
template <class Parser>
boost::system::error_code parse_buffered(Parser& parser, boost::beast::flat_buffer& buffer) {
  boost::system::error_code ec;
  const bool header_was_done = parser.is_header_done();
  while (buffer.size() > 0 && !parser.is_done()) {
    const auto n = parser.put(buffer.data(), ec);
    buffer.consume(n);
    if (ec == boost::beast::http::error::need_more) return {};
    if (ec || n == 0) break;
    if (!header_was_done && parser.is_header_done()) break;  // the caller decides about the body
  }
  return ec;
}

inline bool would_block(const boost::system::error_code& ec) {
  return ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

// Writes `data` to a non-blocking socket as far as the kernel takes it now.
// Returns the bytes written; `ec` is the error (would_block is not one).
inline std::size_t write_now(boost::asio::ip::tcp::socket& socket, std::string_view data,
                             boost::system::error_code& ec) {
  ec = {};
  std::size_t n = 0;
  while (n < data.size()) {
    n += socket.write_some(boost::asio::buffer(data.data() + n, data.size() - n), ec);
    if (ec) {
      if (would_block(ec)) ec = {};
      break;
    }
  }
  return n;
}

// Reads at least one byte (up to `chunk`) into `buffer`: Asio's read on the socket
// itself (not through beast::tcp_stream's wrapper), which tries the socket at once
// and otherwise waits for readability. (A non-blocking read followed by async_wait
// costs an extra epoll_ctl per wait: Asio re-arms the descriptor for a wait.)
// Errors: the read's (eof when the peer closed; operation_aborted when the socket
// was cancelled or closed by a deadline).
inline boost::asio::awaitable<boost::system::error_code> read_some_now(
    boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer, std::size_t chunk) {
  auto [ec, n] = co_await socket.async_read_some(buffer.prepare(chunk),
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
  if (!ec) buffer.commit(n);
  co_return ec;
}

}  // namespace outrider::http::detail
