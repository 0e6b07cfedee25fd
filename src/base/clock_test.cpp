#include "base/clock.h"

#include <gtest/gtest.h>
#include <vector>

namespace outrider {
namespace {

using namespace std::chrono_literals;

TEST(simulated_clock, timers_fire_only_when_time_advances) {
  simulated_clock c;
  int fired = 0;
  c.call_after(10ms, [&] { ++fired; });
  EXPECT_EQ(fired, 0);
  c.advance(9ms);
  EXPECT_EQ(fired, 0);
  c.advance(1ms);
  EXPECT_EQ(fired, 1);
  c.advance(1h);
  EXPECT_EQ(fired, 1);
}

TEST(simulated_clock, fires_in_due_order_with_time_at_due_instant) {
  simulated_clock c;
  auto start = c.now();
  std::vector<std::pair<int, nanoseconds>> order;
  c.call_after(30ms, [&] { order.emplace_back(3, c.now() - start); });
  c.call_after(10ms, [&] { order.emplace_back(1, c.now() - start); });
  c.call_after(20ms, [&] { order.emplace_back(2, c.now() - start); });
  c.advance(7 * 24h);
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], std::make_pair(1, nanoseconds(10ms)));
  EXPECT_EQ(order[1], std::make_pair(2, nanoseconds(20ms)));
  EXPECT_EQ(order[2], std::make_pair(3, nanoseconds(30ms)));
  EXPECT_EQ(c.now() - start, 7 * 24h);
}

TEST(simulated_clock, cancel_and_rearm_from_callback) {
  simulated_clock c;
  int a = 0;
  int b = 0;
  auto id = c.call_after(5ms, [&] { ++a; });
  EXPECT_TRUE(c.cancel(id));
  EXPECT_FALSE(c.cancel(id));
  c.call_after(5ms, [&] { c.call_after(5ms, [&] { ++b; }); });
  c.advance(10ms);
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(c.pending_timers(), 0u);
}

TEST(simulated_clock, wall_step_does_not_move_timers) {
  simulated_clock c;
  int fired = 0;
  c.call_after(1s, [&] { ++fired; });
  c.step_wall_clock(-1h);
  c.advance(999ms);
  EXPECT_EQ(fired, 0);
  c.advance(1ms);
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace outrider
