// Time behind an interface, so that a 7-day delay is testable in milliseconds.
//
// clock gives wall time (for deliver-at times that must survive restarts),
// monotonic time (for timeouts and leases) and one-shot timers. Timers are
// relative: code that waits for a wall-clock instant arms a timer for the
// remaining duration and re-checks now() when it fires, so a clock step never
// makes anything fire early.
//
// Implementations:
//  - simulated_clock (here): time moves only when a test calls advance();
//    timers fire inside advance(), in due order, on the caller's thread.
//  - io::asio_clock (src/io): real time, timers on an Asio executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

namespace outrider {

using wall_time = std::chrono::system_clock::time_point;
using mono_time = std::chrono::steady_clock::time_point;
using nanoseconds = std::chrono::nanoseconds;

class clock {
 public:
  using timer_id = std::uint64_t;
  using callback = std::function<void()>;

  virtual ~clock() = default;

  virtual wall_time now() const = 0;
  virtual mono_time monotonic_now() const = 0;

  // Calls `fn` once, no earlier than `delay` from now (monotonic). Returns an id
  // for cancel(). Thread affinity is the implementation's (see its header).
  virtual timer_id call_after(nanoseconds delay, callback fn) = 0;
  // Cancels a pending timer. Returns false if it already fired or is unknown.
  virtual bool cancel(timer_id id) = 0;
};

// Deterministic clock for tests. Not thread-safe: use from one thread.
class simulated_clock final : public clock {
 public:
  // Starts at `start` wall time (default 2026-01-01T00:00:00Z) and an arbitrary
  // monotonic origin.
  explicit simulated_clock(wall_time start = default_start());

  wall_time now() const override { return wall_; }
  mono_time monotonic_now() const override { return mono_; }
  timer_id call_after(nanoseconds delay, callback fn) override;
  bool cancel(timer_id id) override;

  // Moves time forward by `d`, firing every timer that comes due, in due order
  // (ties in arming order). A timer armed by a callback fires within the same
  // call if it comes due before the end of the advance.
  void advance(nanoseconds d);
  // Steps wall time only (an NTP correction); monotonic time and timers stay.
  void step_wall_clock(nanoseconds d) { wall_ += d; }

  std::size_t pending_timers() const noexcept { return timers_.size(); }

  static wall_time default_start();

 private:
  struct key {
    mono_time due;
    timer_id id;
    bool operator<(const key& o) const { return due != o.due ? due < o.due : id < o.id; }
  };
  wall_time wall_;
  mono_time mono_;
  timer_id next_id_ = 1;
  std::map<key, callback> timers_;
  std::unordered_map<timer_id, mono_time> due_by_id_;
};

}  // namespace outrider
