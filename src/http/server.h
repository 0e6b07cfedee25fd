// server: an HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Keep-alive and pipelining (requests on one connection are answered in
// order), per-connection deadlines (idle between requests, header read, body
// read, response write), header and body size limits (431 / 413), malformed
// requests answered 400 with a JSON error body, `Expect: 100-continue`, and a
// graceful stop that drains in-flight requests.
//
// Threading: the acceptor runs on the runtime's context 0; each accepted
// connection is placed on a context round-robin and lives there: its parser,
// buffers and handler invocation run on that thread. Handlers may answer from
// any thread (the response is posted back to the connection's context).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "http/handler.h"

namespace outrider::io {
class runtime;
}  // namespace outrider::io

namespace outrider::http {

struct server_options {
  // "host:port" or "[v6]:port"; port 0 picks a free port (see server::port()).
  std::string listen = "127.0.0.1:0";
  std::size_t header_limit = 16 * 1024;        // request line + headers, bytes (431 beyond)
  std::uint64_t body_limit = 4 * 1024 * 1024;  // bytes (413 beyond)
  nanoseconds idle_timeout = std::chrono::seconds(60);    // waiting for the next request
  nanoseconds header_timeout = std::chrono::seconds(10);  // first byte to end of headers
  nanoseconds body_timeout = std::chrono::seconds(60);    // end of headers to end of body
  nanoseconds write_timeout = std::chrono::seconds(30);   // writing one response
  std::size_t max_connections = 20000;                    // beyond: accepted and closed at once
  std::string server_header = "outrider";
  // Streaming (see http/body_stream.h): when set and it returns true for a
  // request's head (method, target, headers; no body yet), a body that is
  // chunked or longer than `stream_threshold` is handed to the handler as
  // request.stream instead of being buffered; `body_limit` does not apply to
  // it, `stream_body_limit` does (0: unlimited). Each read of a streamed body
  // must make progress within `body_timeout`. Smaller bodies stay buffered.
  std::function<bool(const request&)> stream_request;
  std::uint64_t stream_threshold = 1024 * 1024;
  std::uint64_t stream_body_limit = 0;
};

class server {
 public:
  // `h` is called for every well-formed request. `rt` must outlive the server.
  server(io::runtime& rt, server_options opts, handler h);
  ~server();  // stops (with a zero grace period) if still running
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and starts accepting. Errors: invalid_argument (bad listen address),
  // unavailable (address in use or not permitted), io_error.
  status start();
  // The bound port and "ip:port" (valid after start()).
  std::uint16_t port() const;
  std::string address() const;

  // Graceful stop: closes the listener; idle connections close at once;
  // requests in flight finish and their responses go out with
  // `Connection: close`; connections still open after `grace` are closed.
  // Blocks until every connection is gone. Idempotent. Must not be called on a
  // runtime thread. REQUIRES: the runtime is running (stop the server before
  // the runtime; declaring the runtime first makes destruction order right).
  void stop(nanoseconds grace = std::chrono::seconds(10));

  std::size_t active_connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Parses "host:port" / "[v6]:port" into host and port (invalid_argument on error).
result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view text);

}  // namespace outrider::http
