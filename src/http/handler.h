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

  // The same with any callable `fn(response&&)`, kept in the responder's own
  // state: one allocation for both (std::function keeps only small callables
  // in place; a wrapper holding another responder and a span is not one).
  template <class Fn>
  static responder of(Fn fn) {
    return responder(std::make_shared<state_of<Fn>>(std::move(fn)));
  }

  // Completes the request. Later calls are ignored. Thread-safe.
  void send(response r) const;
  bool sent() const noexcept;

 private:
  struct state {
    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    virtual ~state() = default;
    virtual void deliver(response&& r) = 0;
    // The 500 answer of a responder dropped unsent (from the most derived
    // destructor, while deliver() can still run).
    void dropped() noexcept;
    std::atomic<bool> done{false};
  };
  template <class Fn>
  struct state_of final : state {
    explicit state_of(Fn f) : fn(std::move(f)) {}
    ~state_of() override { dropped(); }
    void deliver(response&& r) override { fn(std::move(r)); }
    Fn fn;
  };
  explicit responder(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<state> state_;
};

using handler = std::function<void(request&&, responder)>;

// Adapts a synchronous function to a handler.
handler sync_handler(std::function<response(const request&)> fn);

}  // namespace outrider::http
