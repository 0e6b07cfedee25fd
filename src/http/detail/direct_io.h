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

// Whether the socket's io_context runs on one thread (concurrency hint 1, or a
// hint without the reactor's per-descriptor lock, as io::runtime's contexts). Only then may
// read_some_now() and message_drained_socket() skip reads that would find nothing. Look it up once
// per connection.
bool runs_on_one_thread(boost::asio::ip::tcp::socket& socket);

// Asio's per-descriptor flag that makes its next read on `socket` try the socket
// before waiting for readiness (nullptr once the socket is closed; Asio 1.81's
// epoll reactor, reached through its private state: see direct_io.cpp).
bool* read_speculation_flag(boost::asio::ip::tcp::socket& socket);

// Reads at least one byte (up to `chunk`) into `buffer`. Errors: the read's (eof
// when the peer closed; operation_aborted when the socket was cancelled or closed
// by a deadline).
//
// Asio tries every read on the socket before it waits for readiness, and stops
// trying only at the end of the stream, so each read that has to wait (the next
// request on a keep-alive connection, the answer to a request just sent) costs a
// recv that returns EAGAIN. With `one_thread` (the context's reactor runs only on
// this thread): when Asio's flag says something arrived since the last read, the
// socket is read here at once (bytes already there need no posted completion);
// when that finds nothing, or the flag is clear, the read waits for readiness
// without trying first. `drained` is set when the read returned less than it
// asked for and no readiness event can have been handled since: the recv was ours
// (synchronous, here), or the reactor's for the read that waited, whose completion
// resumes this coroutine inline before the reactor polls again (a connection has
// one operation pending at a time). See message_drained_socket().
inline boost::asio::awaitable<boost::system::error_code> read_some_now(
    boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer, std::size_t chunk,
    bool one_thread, bool& drained) {
  drained = false;
  if (one_thread) {
    if (bool* flag = read_speculation_flag(socket); flag != nullptr && *flag) {
      boost::system::error_code ec;
      const std::size_t n = socket.read_some(buffer.prepare(chunk), ec);  // non-blocking
      if (!ec) {
        buffer.commit(n);
        drained = n < chunk;
        co_return ec;
      }
      if (!would_block(ec)) co_return ec;
      // Nothing there now: whatever comes next brings a readiness event.
      *flag = false;
    }
  }
  auto [ec, n] = co_await socket.async_read_some(buffer.prepare(chunk),
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
  if (!ec) {
    buffer.commit(n);
    drained = one_thread && n < chunk;
  }
  co_return ec;
}

// After a read_some_now() that set `drained` and completed a message, with no
// operation started since: the next read on the socket waits for readiness
// instead of trying first (a recv that would find nothing). As nginx reasons, a
// short read emptied the socket and anything sent later brings a new readiness
// event. Only after a complete message: a close or reset that arrived together
// with the last bytes is reported by the next recv, not by a new event, so a
// message still being read keeps Asio's try-first reads (else its read would wait
// for its deadline). After a complete message the same corner costs little: a
// peer that half-closes right after its request keeps the server's connection until
// the idle timeout; a pooled upstream connection closed by its server answers the
// next request with a reset (a new event: the stale-connection retry).
inline void message_drained_socket(boost::asio::ip::tcp::socket& socket) {
  if (bool* flag = read_speculation_flag(socket)) *flag = false;
}

}  // namespace outrider::http::detail
