// client: an HTTP/1.1 client with a keep-alive connection pool, deadlines and
// TLS (OpenSSL through Asio), for the sidecar's calls to apps, other sidecars
// and external services.
//
// Threading: a client belongs to one io_context; its pool is touched only on
// that context's thread. send() may be called from any thread; `done` runs on
// the client's context thread.
//
// Errors (as result values): unavailable (connect refused/reset, DNS, TLS
// handshake), deadline_exceeded (the per-request timeout, which covers
// connecting, sending and receiving), upstream_error (a malformed response or
// the peer closing mid-response), invalid_argument (bad URL).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "http/message.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::http {

struct url {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::uint16_t port = 0;
  std::string target;  // path and query, at least "/"

  // Parses an absolute http(s) URL. Errors: invalid_argument.
  static result<url> parse(std::string_view text);
  std::string origin() const;  // "scheme://host:port"
};

struct client_options {
  nanoseconds connect_timeout = std::chrono::seconds(5);
  std::size_t max_idle_per_origin = 64;
  nanoseconds idle_timeout =
      std::chrono::seconds(50);  // pooled connections older than this are dropped
  std::size_t response_header_limit = 64 * 1024;
  std::uint64_t response_body_limit = 64 * 1024 * 1024;
  // TLS for https origins.
  bool tls_verify_peer = true;
  std::string tls_ca_file;           // empty: the system's default trust store
  std::string tls_client_cert_file;  // optional client certificate (PEM)
  std::string tls_client_key_file;
  std::string user_agent = "outrider";
  // Streaming (see http/body_stream.h). A request with `stream` sends it as
  // its body (chunked unless the stream knows its length); the timeout covers
  // sending it and waiting for the response head. When this is non-zero, a
  // response that is chunked, close-delimited or longer than this many bytes
  // comes back with `stream` set (no response_body_limit; each read must make
  // progress within stream_idle_timeout); 0: responses are always buffered.
  std::uint64_t stream_response_threshold = 0;
  nanoseconds stream_idle_timeout = std::chrono::seconds(60);
};

class client {
 public:
  using callback = std::function<void(result<response>)>;

  // What the borrowing send() answers (the ambassador's call state: no callback to
  // build, and no std::function holding a shared_ptr, which libstdc++ puts on the heap).
  class receiver {
   public:
    virtual ~receiver() = default;
    // The answer, once, on the client's context thread.
    virtual void on_response(result<response>&& r) = 0;
  };

  client(boost::asio::io_context& context, client_options opts = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends `req` (method, target, headers, body; target defaults to
  // destination.target when empty) to `destination`'s origin. `timeout` bounds
  // the whole exchange.
  void send(const url& destination, request&& req, nanoseconds timeout, callback done);
  // The same with `req` borrowed, not moved into the client (a request's move costs
  // ~280 instructions): it must stay valid and unchanged while the client holds `to`
  // (e.g. a member of *to). The client holds `to` until it has
  // answered (`to->on_response` runs once) or, if its context is destroyed first,
  // drops it unanswered. (The one retry after a stale pooled connection re-sends `req`.)
  void send(const url& destination, const request& req, nanoseconds timeout,
            std::shared_ptr<receiver> to);

  // Idle pooled connections (for tests and metrics). Call on the client's thread.
  std::size_t idle_connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace outrider::http
