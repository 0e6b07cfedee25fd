// port_allocator: the TCP ports on 127.0.0.1 the runner gives the processes it
// starts (sidecar API and metrics, app, broker, collector, status endpoint).
//
// A picked port is one the kernel handed out for a bind to port 0 a moment
// ago (an ephemeral port, checked free by binding) and that this allocator has
// not handed out before, so two processes of one run never get the same port.
// Not thread-safe: the runner assigns every port on its main thread at start.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "base/result.h"

namespace outrider::dev {

// True when a TCP socket can bind 127.0.0.1:port right now.
bool port_is_free(std::uint16_t port);
// Binds 127.0.0.1:0 and returns the port the kernel chose (unavailable on error).
result<std::uint16_t> ephemeral_port();

class port_allocator {
 public:
  using port_source = std::function<result<std::uint16_t>()>;
  using free_check = std::function<bool(std::uint16_t)>;

  // The defaults use the real network; tests pass their own.
  explicit port_allocator(port_source source = ephemeral_port, free_check is_free = port_is_free);

  // Claims a configured port for `owner`. Errors: already_exists (handed out
  // before in this run), unavailable (something else listens on it).
  status reserve(std::uint16_t port, const std::string& owner);
  // `configured` when non-zero (reserve()), else a fresh free port.
  result<std::uint16_t> assign(std::uint16_t configured, const std::string& owner);
  // A free port not handed out before. Errors: unavailable.
  result<std::uint16_t> pick();

  const std::set<std::uint16_t>& taken() const noexcept { return taken_; }

 private:
  port_source source_;
  free_check is_free_;
  std::set<std::uint16_t> taken_;
};

}  // namespace outrider::dev
