// asio_clock: the real clock, with timers on one Asio io_context.
//
// Threading: call_after() and cancel() must be called on the context's thread
// (the owner of the timers); callbacks run there too.
#pragma once

#include <memory>
#include <unordered_map>

#include "base/clock.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::io {

class asio_clock final : public clock {
 public:
  explicit asio_clock(boost::asio::io_context& context);
  ~asio_clock() override;

  wall_time now() const override;
  mono_time monotonic_now() const override;
  timer_id call_after(nanoseconds delay, callback fn) override;
  bool cancel(timer_id id) override;

 private:
  struct timer_state;
  boost::asio::io_context& context_;
  timer_id next_id_ = 1;
  std::unordered_map<timer_id, std::shared_ptr<timer_state>> timers_;
};

}  // namespace outrider::io
