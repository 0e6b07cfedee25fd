// Beast side of streamed bodies, shared by server.cpp and client.cpp (the
// only files that include Beast): a body_stream over a parser with
// buffer_body, and the pump that writes a body_stream through a serializer.
// See http/body_stream.h for the contract.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>
#include <memory>

#include "base/clock.h"
#include "http/body_stream.h"
#include "http/detail/message_parser.h"
#include "http/detail/wire.h"
#include "http/message.h"

namespace outrider::http::detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// The next piece of `src`, as an awaitable (resumes on the awaiting
// coroutine's executor).
inline asio::awaitable<result<body_stream::piece>> next_piece(body_stream& src) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(result<body_stream::piece>)>(
      [&src](auto handler) {
        auto h = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        auto ex = asio::get_associated_executor(*h);
        src.read([h, ex](result<body_stream::piece> r) {
          asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

// A body read from `Stream` by the parser that read the head (header read, body
// not started), one window at a time, only when asked (backpressure). `keep`
// owns the connection `s` lives in. On a read error the socket is closed (the
// peer sees a cut).
template <bool isRequest, class Stream>
class parser_body_stream final
    : public body_stream,
      public std::enable_shared_from_this<parser_body_stream<isRequest, Stream>> {
 public:
  using parser_type = message_parser<isRequest>;

  parser_body_stream(Stream& s, std::shared_ptr<void> keep, beast::flat_buffer buffer,
                     parser_type&& header_parser, nanoseconds idle_timeout,
                     std::uint64_t body_limit)
      : s_(&s),
        ex_(s.get_executor()),
        keep_(std::move(keep)),
        buffer_(std::move(buffer)),
        parser_(std::move(header_parser)),
        idle_(idle_timeout),
        window_(std::make_unique<char[]>(stream_window_bytes)) {
    // Beast reads at most the buffer's free capacity per read_some: room for
    // a whole window keeps reads large (a small header buffer meant 512-byte reads).
    buffer_.reserve(buffer_.size() + stream_window_bytes);
    if (auto len = parser_.content_length()) length_ = *len;
    if (body_limit == 0) {
      parser_.body_limit(boost::none);
    } else {
      parser_.body_limit(body_limit);
    }
  }

  // Called once when the body ended cleanly, with whether the connection can
  // carry another message (keep-alive and nothing read past this message).
  // After it the stream no longer touches the connection.
  std::function<void(bool reusable)> on_end;

  void read(read_fn done) override {
    started_ = true;
    const auto& ex = ex_;
    if (reading_) {
      asio::post(ex, [done] { done(error(errc::internal, "body_stream: concurrent read")); });
      return;
    }
    if (failed_ || detached_) {
      asio::post(ex, [done, why = why_] { done(error(errc::upstream_error, why)); });
      return;
    }
    if (done_) {
      asio::post(ex, [done] { done(piece{{}, true}); });
      return;
    }
    reading_ = true;
    read_more(std::move(done));
  }

  std::optional<std::uint64_t> content_length() const override { return length_; }

  // The body was read to its end.
  bool done() const noexcept { return done_; }
  // The owner takes the connection back (or closes it): later reads fail. If
  // the body was read to the end, returns the bytes read past it.
  beast::flat_buffer detach() {
    detached_ = true;
    why_ = "the body stream ended with its exchange";
    if (!done_) return {};    // a read may be in flight into buffer_: leave it there
    buffer_.shrink_to_fit();  // the connection does not keep the window's room
    return std::move(buffer_);
  }

 private:
  void read_more(read_fn done) {
    parser_.set_window(window_.get(), stream_window_bytes);
    beast::get_lowest_layer(*s_).expires_after(idle_);
    bhttp::async_read_some(*s_, buffer_, parser_,
                           [self = this->shared_from_this(), done = std::move(done)](
                               boost::system::error_code ec, std::size_t) mutable {
                             self->on_read(ec, std::move(done));
                           });
  }

  void on_read(boost::system::error_code ec, read_fn done) {
    if (ec == bhttp::error::need_buffer) ec = {};
    const std::size_t got = stream_window_bytes - parser_.window_left();
    if (ec || detached_) {
      failed_ = true;
      reading_ = false;
      why_ = ec ? fmt::format("the body was cut: {}", ec.message())
                : std::string("the body stream ended with its exchange");
      boost::system::error_code ignored;
      if (!done_) beast::get_lowest_layer(*s_).socket().close(ignored);
      done(error(errc::upstream_error, why_));
      return;
    }
    if (parser_.is_done()) {
      done_ = true;
      beast::get_lowest_layer(*s_).expires_never();
      if (on_end) {
        auto f = std::move(on_end);
        on_end = nullptr;
        f(parser_.keep_alive() && buffer_.size() == 0);
      }
    }
    if (got == 0 && !done_) {
      read_more(std::move(done));
      return;
    }
    reading_ = false;
    done(got > 0 ? piece{std::string_view(window_.get(), got), false} : piece{{}, true});
  }

  Stream* s_;
  typename Stream::executor_type ex_;
  std::shared_ptr<void> keep_;
  beast::flat_buffer buffer_;
  parser_type parser_;
  nanoseconds idle_;
  std::unique_ptr<char[]> window_;
  std::optional<std::uint64_t> length_;
  bool reading_ = false;
  bool done_ = false;
  bool failed_ = false;
  bool detached_ = false;
  std::string why_;
};

// How writing a streamed body ended.
struct pump_result {
  enum class kind { done, source_cut, sink_failed } end = kind::done;
  boost::system::error_code ec;  // sink_failed
  std::string why;               // source_cut
};

// Writes `m`'s header, then every piece of `src` through a buffer_body
// serializer (chunked or Content-Length, as `m` says), waiting for each write
// before the next read. `arm` sets the stream's deadline before each write.
// With `header_only` the body is not sent (HEAD, 204, 304).
template <class Stream, bool isRequest, class Arm>
asio::awaitable<pump_result> pump_body(Stream& s, bhttp::message<isRequest, bhttp::buffer_body>& m,
                                       body_stream& src, Arm arm, bool header_only = false) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  m.body().data = nullptr;
  m.body().size = 0;
  m.body().more = !header_only;
  bhttp::serializer<isRequest, bhttp::buffer_body> sr{m};
  arm();
  {
    auto [ec, n] = co_await bhttp::async_write_header(s, sr, use_tuple);
    if (ec) co_return pump_result{pump_result::kind::sink_failed, ec, {}};
  }
  if (header_only) co_return pump_result{};
  for (;;) {
    auto p = co_await next_piece(src);
    if (!p) co_return pump_result{pump_result::kind::source_cut, {}, p.error().message};
    if (p->end) {
      m.body().data = nullptr;
      m.body().size = 0;
      m.body().more = false;
    } else {
      m.body().data = const_cast<char*>(p->data.data());
      m.body().size = p->data.size();
      m.body().more = true;
    }
    arm();
    auto [ec, n] = co_await bhttp::async_write(s, sr, use_tuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return pump_result{pump_result::kind::sink_failed, ec, {}};
    if (p->end) co_return pump_result{};
  }
}

// True for header fields the sender of a streamed message sets itself.
inline bool framing_field(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Connection");
}

}  // namespace outrider::http::detail
