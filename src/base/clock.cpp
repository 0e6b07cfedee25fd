#include "base/clock.h"

#include "base/assert.h"

namespace outrider {

simulated_clock::simulated_clock(wall_time start)
    : wall_(start), mono_(mono_time{} + std::chrono::hours(1)) {}

wall_time simulated_clock::default_start() {
  // 2026-01-01T00:00:00Z
  return wall_time{std::chrono::seconds{1767225600}};
}

clock::timer_id simulated_clock::call_after(nanoseconds delay, callback fn) {
  OUTRIDER_ASSERT(fn != nullptr, "call_after needs a callback");
  if (delay < nanoseconds::zero()) delay = nanoseconds::zero();
  auto id = next_id_++;
  auto due = mono_ + delay;
  timers_.emplace(key{due, id}, std::move(fn));
  due_by_id_.emplace(id, due);
  return id;
}

bool simulated_clock::cancel(timer_id id) {
  auto it = due_by_id_.find(id);
  if (it == due_by_id_.end()) return false;
  timers_.erase(key{it->second, id});
  due_by_id_.erase(it);
  return true;
}

void simulated_clock::advance(nanoseconds d) {
  OUTRIDER_ASSERT(d >= nanoseconds::zero(), "time does not go backwards");
  const auto end = mono_ + d;
  while (!timers_.empty() && timers_.begin()->first.due <= end) {
    auto node = timers_.extract(timers_.begin());
    due_by_id_.erase(node.key().id);
    // Time moves to the timer's due instant before it fires.
    wall_ += node.key().due - mono_;
    mono_ = node.key().due;
    node.mapped()();
  }
  wall_ += end - mono_;
  mono_ = end;
}

}  // namespace outrider
