// body_stream: a message body read piece by piece, for the requests and
// responses that are streamed instead of buffered (service invocation and
// the forward proxy; see README "Streaming").
//
// A streamed `request` or `response` carries `stream` (its `body` is empty):
//   - the server hands a handler such a request when the route asked for
//     streaming (server_options::stream_request) and the body is chunked or
//     longer than server_options::stream_threshold; the handler reads it;
//   - a handler answers with a streamed response by setting `stream`: the
//     server writes the head, then each piece as it is read (chunked, or with
//     Content-Length when content_length() is known);
//   - http::client sends a request's `stream` as its body, and returns a
//     streamed response when client_options::stream_response_threshold allows.
// Backpressure: a reader asks for the next piece only when it has written the
// previous one, and a stream reads its socket only when asked, so each hop
// holds one window of bytes (64 KiB) per direction.
//
// Threading: a stream belongs to the I/O context of its connection; read()
// must be called there and `done` runs there, never inside read().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "base/result.h"

namespace outrider::http {

class body_stream {
 public:
  // `data` stays valid until the next read() or the stream's destruction.
  // `end`: the body ended cleanly (data is then empty).
  struct piece {
    std::string_view data;
    bool end = false;
  };
  using read_fn = std::function<void(result<piece>)>;

  virtual ~body_stream() = default;

  // Reads the next piece. At most one read at a time; `done` runs exactly
  // once. An error means the body was cut (peer reset or closed early, a
  // malformed chunk, an idle timeout, the stream limit): the reader must not
  // end its own output cleanly after one.
  virtual void read(read_fn done) = 0;

  // The body's length when the sender declared it (Content-Length).
  virtual std::optional<std::uint64_t> content_length() const = 0;

  // True once the first read() was made: from then on the body cannot be
  // replayed (a call that streamed it is not retried).
  bool started() const noexcept { return started_; }

 protected:
  bool started_ = false;
};

// Bytes per read: the window a stream holds.
inline constexpr std::size_t stream_window_bytes = 64 * 1024;

}  // namespace outrider::http
