#include "io/asio_clock.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace outrider::io {

struct asio_clock::timer_state {
  explicit timer_state(boost::asio::io_context& ctx) : timer(ctx) {}
  boost::asio::steady_timer timer;
  callback fn;
};

asio_clock::asio_clock(boost::asio::io_context& context) : context_(context) {}

asio_clock::~asio_clock() {
  for (auto& [id, state] : timers_) state->timer.cancel();
}

wall_time asio_clock::now() const {
  return std::chrono::system_clock::now();
}

mono_time asio_clock::monotonic_now() const {
  return std::chrono::steady_clock::now();
}

clock::timer_id asio_clock::call_after(nanoseconds delay, callback fn) {
  auto id = next_id_++;
  auto state = std::make_shared<timer_state>(context_);
  state->fn = std::move(fn);
  state->timer.expires_after(delay);
  timers_.emplace(id, state);
  state->timer.async_wait([this, id, state](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled
    timers_.erase(id);
    auto fn_to_call = std::move(state->fn);
    fn_to_call();
  });
  return id;
}

bool asio_clock::cancel(timer_id id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  it->second->timer.cancel();
  timers_.erase(it);
  return true;
}

}  // namespace outrider::io
