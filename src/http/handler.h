// Request handlers: functions from a request to a response, with no socket in
// them (unit-testable without a network).
//
// A handler receives the request by value and a responder, and calls
// responder.send(response) exactly once, now or later, from any thread
// (asynchronous handlers: publish waits for the broker's confirm, invocation
// for the upstream). If every copy of a responder is dropped without send(),
// the client gets a 500 ERR_INTERNAL instead of a hung connection.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "http/message.h"

namespace outrider::http {

class responder {
 public:
  using deliver_fn = std::function<void(response&&)>;

  // `deliver` is called at most once, on the thread that calls send().
  explicit responder(deliver_fn deliver);

  // Completes the request. Later calls are ignored. Thread-safe.
  void send(response r) const;
  bool sent() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

using handler = std::function<void(request&&, responder)>;

// Adapts a synchronous function to a handler.
handler sync_handler(std::function<response(const request&)> fn);

}  // namespace outrider::http
