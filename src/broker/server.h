// server: the broker's binary protocol server (docs/formats/broker-protocol.md)
// over TCP and Unix sockets, in front of a `service` (service.h).
//
// One coroutine session per connection: a reader that decodes frames and calls
// the service, and a writer that sends everything queued since its last write
// in one write (confirms, deliveries and answers coalesce). The reader keeps
// reading while earlier publishes await durability (pipelining) up to
// max_in_flight_publishes per connection, then pauses (backpressure through
// TCP). Answers go out as their completions arrive; every answer carries its
// request id.
//
// A malformed, oversized, checksum-failing or out-of-order frame closes that
// connection after a final ERROR frame (errc::protocol_error, request id 0);
// other connections and the broker are unaffected. Request-level failures
// (unknown queue, ...) are ERROR frames with the request's id and keep the
// connection open.
//
// Deadlines: idle (no frame started), frame (first byte to last byte of a
// frame), write (one coalesced write). A connection missing one is closed.
//
// Threading: acceptors run on the runtime's context 0; each connection is
// placed on a context round-robin and its state is touched only there.
// Service completions and deliveries are posted to the connection's context.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "broker/service.h"
#include "broker_client/wire_format.h"

namespace outrider::io {
class runtime;
}  // namespace outrider::io

namespace outrider::broker {

struct server_options {
  // "host:port" ("[v6]:port"; port 0 picks one) or "unix:/path/to/socket".
  std::vector<std::string> listen{"127.0.0.1:0"};
  std::string server_name = "outrider-broker";
  // Largest frame accepted from a client (and announced in HELLO_OK).
  std::size_t max_frame_bytes = bc::wire::default_max_frame_bytes;
  // Announced in HELLO_OK; enforced by the service.
  std::uint32_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_batch_messages = 4096;
  // Publishes awaiting their confirm, per connection, before reading pauses.
  std::size_t max_in_flight_publishes = 256;
  // Bytes queued for a slow client before reading pauses.
  std::size_t max_output_bytes = 16 * 1024 * 1024;
  nanoseconds idle_timeout = std::chrono::seconds(60);
  nanoseconds frame_timeout = std::chrono::seconds(30);
  nanoseconds write_timeout = std::chrono::seconds(30);
  std::size_t max_connections = 10000;
};

class server {
 public:
  // `rt` and `svc` must outlive the server.
  server(io::runtime& rt, server_options opts, service& svc);
  ~server();  // stop(0) if running
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds every listen address and starts accepting. A stale Unix socket file
  // is replaced. Errors: invalid_argument (bad address), unavailable (cannot bind).
  status start();
  // The bound addresses, in listen order ("127.0.0.1:40123", "unix:/run/b.sock").
  std::vector<std::string> addresses() const;

  // Graceful stop: stops accepting and reading; requests already read finish
  // (confirms of in-flight publishes go out), then connections close. After
  // `grace` the rest are closed at once. Blocks until every connection is gone.
  // Idempotent. Must not run on a runtime thread; the runtime must be running.
  void stop(nanoseconds grace = std::chrono::seconds(10));

  std::size_t active_connections() const;

 private:
  friend struct session;  // a connection, in server.cpp
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace outrider::broker
