// lazy_deadline: a connection's deadline that costs no timer operation per
// request (internal to server.cpp and client.cpp).
//
// Beast's tcp_stream arms its timer on every read and write, which is a timer
// queue update (and often a timerfd_settime) per operation. Here the deadline
// is a plain time point that each phase moves; the one steady_timer is
// re-armed only when the deadline moves earlier than the time the timer is set
// for, or when the timer fires before the (since moved) deadline. On a
// keep-alive connection that is about one timer operation per shortest
// timeout, not several per request. When the deadline has passed, `on_expire`
// runs (the owner closes its socket, so every pending and later operation
// fails) and expired() stays true.
//
// Touched only on the owner's executor thread. Owned by shared_ptr (the
// timer's handler holds one); the owner calls shutdown() when it is done.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace outrider::http::detail {

class lazy_deadline : public std::enable_shared_from_this<lazy_deadline> {
 public:
  using clock = std::chrono::steady_clock;

  explicit lazy_deadline(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  // What to do when the deadline passes (e.g. close the socket). Replaceable.
  void on_expire(std::function<void()> fn) { on_expire_ = std::move(fn); }

  void expires_at(clock::time_point t) {
    deadline_ = t;
    if (t < armed_) arm(t);
  }
  template <class Duration>
  void expires_after(Duration d) {
    expires_at(clock::now() + std::chrono::duration_cast<clock::duration>(d));
  }
  void expires_never() { deadline_ = clock::time_point::max(); }

  bool expired() const { return expired_; }

  // No more expiry: drops on_expire and cancels the timer.
  void shutdown() {
    on_expire_ = nullptr;
    deadline_ = clock::time_point::max();
    armed_ = clock::time_point::max();
    ++generation_;
    timer_.cancel();
  }

 private:
  void arm(clock::time_point t) {
    armed_ = t;
    const std::uint64_t gen = ++generation_;
    timer_.expires_at(t);
    timer_.async_wait(
        [self = shared_from_this(), gen](const boost::system::error_code&) { self->fired(gen); });
  }

  void fired(std::uint64_t gen) {
    if (gen != generation_) return;  // superseded by a later arm() or shutdown()
    armed_ = clock::time_point::max();
    if (deadline_ == clock::time_point::max() || !on_expire_) return;
    if (clock::now() < deadline_) {
      arm(deadline_);
      return;
    }
    expired_ = true;
    auto fn = on_expire_;  // may call shutdown()
    fn();
  }

  boost::asio::steady_timer timer_;
  std::function<void()> on_expire_;
  clock::time_point deadline_ = clock::time_point::max();
  clock::time_point armed_ = clock::time_point::max();
  std::uint64_t generation_ = 0;
  bool expired_ = false;
};

}  // namespace outrider::http::detail
