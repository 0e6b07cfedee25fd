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
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

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
    return responder(new state_of<Fn>(std::move(fn)));
  }

  // `inner` with `hook(response&)` run once just before its response is
  // delivered (also before the 500 answer of a responder dropped unsent), and
  // destroyed right after it ran. The hook is kept in `inner`'s own state
  // when it has room (sizeof(Hook) <= hook_capacity, no hook yet, not sent):
  // no allocation and no extra call through a wrapper (the sidecar's SERVER
  // span ends here); else `inner` is wrapped as with of(), and hooks added
  // later run first. Call it before `inner` is shared with another thread.
  template <class Hook>
  static responder with_hook(responder inner, Hook&& hook);
  static constexpr std::size_t hook_capacity = 96;

  // Completes the request. Later calls are ignored. Thread-safe.
  void send(response r) const;
  bool sent() const noexcept;

  responder(const responder& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) state_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  responder(responder&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  responder& operator=(const responder& other) noexcept {
    responder(other).swap(*this);
    return *this;
  }
  responder& operator=(responder&& other) noexcept {
    responder(std::move(other)).swap(*this);
    return *this;
  }
  ~responder() {
    if (state_ != nullptr && state_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      state_->released();
    }
  }
  void swap(responder& other) noexcept { std::swap(state_, other.state_); }

  // The state every copy of a responder shares. An implementation for a
  // state its owner keeps and reuses request after request (the HTTP server's
  // per-connection slot: no allocation per request) derives from it, overrides
  // released() and hands out responders with adopt().
  class state {
   public:
    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    virtual ~state() {
      if (hook != nullptr) hook(hook_storage, nullptr);  // a hook never run (not sent)
    }

   protected:
    // Called once the last responder copy is gone (on that copy's thread). The
    // default deletes the state (a derived destructor calls dropped()); a reused
    // state calls dropped() itself, and may be adopted again afterwards.
    virtual void released() noexcept { delete this; }
    virtual void deliver(response&& r) = 0;
    // The 500 answer of a responder dropped unsent (from the most derived
    // destructor or released(), while deliver() can still run).
    void dropped() noexcept;
    // For a reused state, before it is adopted again: unsent, no hook.
    // REQUIRES: no responder refers to it.
    void reset_for_reuse() noexcept { done.store(false, std::memory_order_relaxed); }

   private:
    friend class responder;
    // Runs the hook, if any, then deliver(): once, by whoever set `done`.
    void finish(response&& r);
    std::atomic<std::uint32_t> refs{0};  // responder copies
    std::atomic<bool> done{false};
    // with_hook's hook: (storage, &response) runs it and destroys it,
    // (storage, nullptr) only destroys it.
    void (*hook)(void*, response*) = nullptr;
    alignas(std::max_align_t) unsigned char hook_storage[hook_capacity];
  };
  // The first responder of `s`, which no responder refers to (new, or
  // reset_for_reuse() after its released()).
  static responder adopt(state& s) noexcept { return responder(&s); }

 private:
  template <class Fn>
  struct state_of final : state {
    explicit state_of(Fn f) : fn(std::move(f)) {}
    ~state_of() override { dropped(); }
    void deliver(response&& r) override { fn(std::move(r)); }
    Fn fn;
  };
  // Takes the first reference of `s`.
  explicit responder(state* s) noexcept : state_(s) {
    state_->refs.store(1, std::memory_order_relaxed);
  }
  state* state_;
};

template <class Hook>
responder responder::with_hook(responder inner, Hook&& hook) {
  using hook_type = std::decay_t<Hook>;
  state& s = *inner.state_;
  if constexpr (sizeof(hook_type) <= hook_capacity &&
                alignof(hook_type) <= alignof(std::max_align_t)) {
    if (s.hook == nullptr && !s.done.load(std::memory_order_relaxed)) {
      ::new (static_cast<void*>(s.hook_storage)) hook_type(std::forward<Hook>(hook));
      s.hook = [](void* p, response* r) {
        // Run in place, then destroyed (also when it throws).
        struct destroy_at_exit {
          hook_type* h;
          ~destroy_at_exit() { h->~hook_type(); }
        } const d{std::launder(static_cast<hook_type*>(p))};
        if (r != nullptr) (*d.h)(*r);
      };
      return inner;
    }
  }
  return of(
      [hook = hook_type(std::forward<Hook>(hook)), inner = std::move(inner)](response&& r) mutable {
        auto h = std::move(hook);
        const auto i = std::move(inner);
        h(r);
        i.send(std::move(r));
      });
}

using handler = std::function<void(request&&, responder)>;

// Adapts a synchronous function to a handler.
handler sync_handler(std::function<response(const request&)> fn);

}  // namespace outrider::http
