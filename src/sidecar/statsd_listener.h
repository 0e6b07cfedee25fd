// statsd_listener: a UDP socket on which the app pushes StatsD lines; each
// datagram goes to a metrics::statsd_sink (see metrics/statsd.h), so the
// app's metrics appear on the sidecar's /metrics.
//
// Threading: start()/stop() from the owner; datagrams are read on the given
// io_context. stop() must run before the io_context is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "metrics/statsd.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::sidecar {

class statsd_listener {
 public:
  statsd_listener(boost::asio::io_context& context, metrics::statsd_sink& sink);
  ~statsd_listener();
  statsd_listener(const statsd_listener&) = delete;
  statsd_listener& operator=(const statsd_listener&) = delete;

  // Binds host:port (port 0 picks a free one). Errors: unavailable (in use),
  // invalid_argument (bad address).
  status start(const std::string& host, std::uint16_t port);
  void stop();
  std::uint16_t port() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace outrider::sidecar
