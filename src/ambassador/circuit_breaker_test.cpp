#include "ambassador/circuit_breaker.h"

#include <gtest/gtest.h>

namespace outrider::ambassador {
namespace {

using namespace std::chrono_literals;
using state = circuit_breaker::state;

breaker_policy policy(std::uint32_t threshold, std::uint32_t max_requests = 1) {
  breaker_policy p;
  p.trip.threshold = threshold;
  p.max_requests = max_requests;
  p.timeout = 30s;
  return p;
}

TEST(circuit_breaker, opens_after_consecutive_failures_and_refuses_fast) {
  simulated_clock clk;
  circuit_breaker cb(policy(2), clk.monotonic_now());
  for (int i = 0; i < 3; ++i) {
    auto a = cb.allow(clk.monotonic_now());
    ASSERT_TRUE(a.allowed);
    cb.on_failure(a.generation, clk.monotonic_now());
  }
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::open);
  clk.advance(10s);
  auto refused = cb.allow(clk.monotonic_now());
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, nanoseconds(20s));
}

TEST(circuit_breaker, a_success_resets_consecutive_failures) {
  simulated_clock clk;
  circuit_breaker cb(policy(2), clk.monotonic_now());
  for (int i = 0; i < 10; ++i) {
    auto a = cb.allow(clk.monotonic_now());
    ASSERT_TRUE(a.allowed);
    if (i % 2 == 0) {
      cb.on_failure(a.generation, clk.monotonic_now());
    } else {
      cb.on_success(a.generation, clk.monotonic_now());
    }
  }
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::closed);
}

TEST(circuit_breaker, half_open_admits_max_requests_probes_then_closes) {
  simulated_clock clk;
  circuit_breaker cb(policy(0, 2), clk.monotonic_now());
  auto a = cb.allow(clk.monotonic_now());
  cb.on_failure(a.generation, clk.monotonic_now());
  ASSERT_EQ(cb.current(clk.monotonic_now()), state::open);
  clk.advance(30s);
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::half_open);
  auto p1 = cb.allow(clk.monotonic_now());
  auto p2 = cb.allow(clk.monotonic_now());
  auto p3 = cb.allow(clk.monotonic_now());
  EXPECT_TRUE(p1.allowed);
  EXPECT_TRUE(p2.allowed);
  EXPECT_FALSE(p3.allowed);  // only max_requests probes at once
  cb.on_success(p1.generation, clk.monotonic_now());
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::half_open);
  cb.on_success(p2.generation, clk.monotonic_now());
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::closed);
}

TEST(circuit_breaker, a_failed_probe_opens_again) {
  simulated_clock clk;
  circuit_breaker cb(policy(0), clk.monotonic_now());
  auto a = cb.allow(clk.monotonic_now());
  cb.on_failure(a.generation, clk.monotonic_now());
  clk.advance(31s);
  auto probe = cb.allow(clk.monotonic_now());
  ASSERT_TRUE(probe.allowed);
  cb.on_failure(probe.generation, clk.monotonic_now());
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::open);
  EXPECT_FALSE(cb.allow(clk.monotonic_now()).allowed);
}

TEST(circuit_breaker, results_from_an_older_generation_are_ignored) {
  simulated_clock clk;
  circuit_breaker cb(policy(0), clk.monotonic_now());
  auto slow = cb.allow(clk.monotonic_now());
  auto fast = cb.allow(clk.monotonic_now());
  cb.on_failure(fast.generation, clk.monotonic_now());
  ASSERT_EQ(cb.current(clk.monotonic_now()), state::open);
  clk.advance(31s);
  ASSERT_EQ(cb.current(clk.monotonic_now()), state::half_open);
  cb.on_success(slow.generation, clk.monotonic_now());  // admitted while closed
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::half_open);
}

TEST(circuit_breaker, interval_resets_counts_while_closed) {
  simulated_clock clk;
  auto p = policy(2);
  p.trip.what = trip_condition::counter::total_failures;
  p.interval = 10s;
  circuit_breaker cb(p, clk.monotonic_now());
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 2; ++i) {
      auto a = cb.allow(clk.monotonic_now());
      cb.on_failure(a.generation, clk.monotonic_now());
    }
    clk.advance(11s);
  }
  EXPECT_EQ(cb.current(clk.monotonic_now()), state::closed);
}

TEST(retry_budget, allows_a_fraction_of_active_calls_with_a_floor) {
  retry_budget b({20.0, 3});
  for (int i = 0; i < 10; ++i) b.call_started();
  EXPECT_EQ(b.limit(), 3u);  // 20% of 10 = 2 < floor 3
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
  for (int i = 0; i < 40; ++i) b.call_started();
  EXPECT_EQ(b.limit(), 10u);  // 20% of 50
  EXPECT_TRUE(b.try_acquire());
  b.release();
  EXPECT_EQ(b.active_retries(), 3u);
}

TEST(retry_budget, counts_the_calls_of_every_shard) {
  retry_budget b({20.0, 1});
  auto& one = b.add_shard();  // one engine's calls
  auto& two = b.add_shard();  // another's
  for (int i = 0; i < 10; ++i) one.started();
  for (int i = 0; i < 5; ++i) two.started();
  for (int i = 0; i < 5; ++i) b.call_started();
  EXPECT_EQ(b.active_calls(), 20u);
  EXPECT_EQ(b.limit(), 4u);  // 20% of the 20 calls of both shards and the budget's own
  for (int i = 0; i < 10; ++i) one.ended();
  EXPECT_EQ(b.active_calls(), 10u);
  EXPECT_EQ(b.limit(), 2u);
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
}

}  // namespace
}  // namespace outrider::ambassador
