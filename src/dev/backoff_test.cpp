#include "dev/backoff.h"

#include <gtest/gtest.h>

namespace outrider::dev {
namespace {

using namespace std::chrono_literals;

TEST(restart_backoff, doubles_up_to_the_cap) {
  restart_backoff b(
      {.initial_delay = 500ms, .max_delay = 5s, .multiplier = 2.0, .reset_after = 30s});
  EXPECT_EQ(b.on_exit(1s), 500ms);
  EXPECT_EQ(b.on_exit(1s), 1s);
  EXPECT_EQ(b.on_exit(1s), 2s);
  EXPECT_EQ(b.on_exit(1s), 4s);
  EXPECT_EQ(b.on_exit(1s), 5s);
  EXPECT_EQ(b.on_exit(1s), 5s);
  EXPECT_EQ(b.consecutive(), 6u);
}

TEST(restart_backoff, a_long_run_resets_it) {
  restart_backoff b(
      {.initial_delay = 100ms, .max_delay = 10s, .multiplier = 3.0, .reset_after = 30s});
  EXPECT_EQ(b.on_exit(0s), 100ms);
  EXPECT_EQ(b.on_exit(0s), 300ms);
  EXPECT_EQ(b.on_exit(29s), 900ms);
  EXPECT_EQ(b.on_exit(30s), 100ms);  // ran long enough: healthy again
  EXPECT_EQ(b.consecutive(), 1u);
}

TEST(restart_backoff, thousands_of_crashes_stay_at_the_cap) {
  restart_backoff b({.initial_delay = 1ms, .max_delay = 30s, .multiplier = 2.0, .reset_after = 1h});
  nanoseconds last{};
  for (int i = 0; i < 5000; ++i) last = b.on_exit(0s);
  EXPECT_EQ(last, 30s);
}

}  // namespace
}  // namespace outrider::dev
