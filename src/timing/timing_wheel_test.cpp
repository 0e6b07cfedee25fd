#include "timing/timing_wheel.h"

#include <cstdint>
#include <gtest/gtest.h>
#include <set>
#include <utility>
#include <vector>

#include "base/random.h"

namespace outrider::timing {
namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t second = 1000 * ms;
constexpr std::int64_t day = 86'400 * second;
constexpr std::int64_t epoch_2026 = 1'767'225'600 * second;

std::vector<due_entry> pop_all(scheduler& s, std::int64_t now) {
  std::vector<due_entry> out;
  auto n = s.pop_due(now, out, SIZE_MAX);
  EXPECT_TRUE(n.ok());
  return out;
}

TEST(timing_wheel, empty_wheel_has_no_next_due) {
  timing_wheel wheel;
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_FALSE(wheel.next_due().has_value());
  EXPECT_TRUE(pop_all(wheel, epoch_2026).empty());
}

TEST(timing_wheel, fires_in_due_order_and_never_early) {
  timing_wheel wheel({.start_ns = epoch_2026});
  ASSERT_TRUE(wheel.insert(epoch_2026 + 30 * ms, 3).ok());
  ASSERT_TRUE(wheel.insert(epoch_2026 + 10 * ms + 5, 1).ok());
  ASSERT_TRUE(wheel.insert(epoch_2026 + 10 * ms + 7, 2).ok());
  EXPECT_EQ(wheel.size(), 3u);

  // Same tick as the first two, but before their exact due time.
  EXPECT_TRUE(pop_all(wheel, epoch_2026 + 10 * ms + 4).empty());
  EXPECT_EQ(pop_all(wheel, epoch_2026 + 10 * ms + 5),
            (std::vector<due_entry>{{epoch_2026 + 10 * ms + 5, 1}}));
  EXPECT_EQ(pop_all(wheel, epoch_2026 + 31 * ms),
            (std::vector<due_entry>{{epoch_2026 + 10 * ms + 7, 2}, {epoch_2026 + 30 * ms, 3}}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(timing_wheel, past_and_exactly_now_fire_on_next_pop) {
  timing_wheel wheel({.start_ns = epoch_2026});
  EXPECT_TRUE(pop_all(wheel, epoch_2026 + second).empty());
  wheel.add(epoch_2026 + second, 7);  // exactly now
  wheel.add(epoch_2026 - day, 8);     // a day in the past
  wheel.add(-5, 9);                   // before the epoch
  EXPECT_EQ(wheel.next_due(), -5);
  EXPECT_EQ(pop_all(wheel, epoch_2026 + second),
            (std::vector<due_entry>{{-5, 9}, {epoch_2026 - day, 8}, {epoch_2026 + second, 7}}));
}

TEST(timing_wheel, pop_respects_max_and_keeps_order_across_calls) {
  timing_wheel wheel({.start_ns = epoch_2026});
  for (std::uint64_t i = 0; i < 100; ++i)
    wheel.add(epoch_2026 + static_cast<std::int64_t>(i), 100 - i);
  std::vector<due_entry> out;
  ASSERT_EQ(*wheel.pop_due(epoch_2026 + second, out, 30), 30u);
  ASSERT_EQ(*wheel.pop_due(epoch_2026 + second, out, 1000), 70u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].due_ns, epoch_2026 + static_cast<std::int64_t>(i));
  }
  EXPECT_EQ(*wheel.pop_due(epoch_2026 + second, out, 0), 0u);
}

TEST(timing_wheel, seven_day_horizon_in_test_time) {
  timing_wheel wheel({.start_ns = epoch_2026});
  const std::int64_t due = epoch_2026 + 7 * day;
  wheel.add(due, 42);
  ASSERT_TRUE(wheel.next_due().has_value());
  EXPECT_LE(*wheel.next_due(), due);
  EXPECT_TRUE(pop_all(wheel, due - 1).empty());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.next_due(), due);  // reached the ready set: exact now
  EXPECT_EQ(pop_all(wheel, due), (std::vector<due_entry>{{due, 42}}));
}

TEST(timing_wheel, huge_gap_is_cheap) {
  // Ten years of 1 ms ticks would take minutes if advance() walked ticks.
  timing_wheel wheel({.start_ns = epoch_2026});
  const std::int64_t ten_years = 3650 * day;
  wheel.add(epoch_2026 + ten_years, 1);
  wheel.add(epoch_2026 + ten_years / 2, 2);
  EXPECT_EQ(pop_all(wheel, epoch_2026 + ten_years),
            (std::vector<due_entry>{{epoch_2026 + ten_years / 2, 2}, {epoch_2026 + ten_years, 1}}));
  wheel.add(epoch_2026 + 2 * ten_years, 3);
  EXPECT_EQ(pop_all(wheel, INT64_MAX), (std::vector<due_entry>{{epoch_2026 + 2 * ten_years, 3}}));
}

TEST(timing_wheel, clock_stepping_back_never_fires_early) {
  timing_wheel wheel({.start_ns = epoch_2026});
  wheel.add(epoch_2026 + 5 * second, 1);
  EXPECT_TRUE(pop_all(wheel, epoch_2026 + 4 * second).empty());
  wheel.add(epoch_2026 + 4 * second + 500 * ms, 2);
  EXPECT_TRUE(pop_all(wheel, epoch_2026 + 3 * second).empty());  // wall clock stepped back
  EXPECT_EQ(pop_all(wheel, epoch_2026 + 4 * second + 500 * ms),
            (std::vector<due_entry>{{epoch_2026 + 4 * second + 500 * ms, 2}}));
  EXPECT_EQ(pop_all(wheel, epoch_2026 + 5 * second),
            (std::vector<due_entry>{{epoch_2026 + 5 * second, 1}}));
}

TEST(timing_wheel, earliest_due_exact_matches_minimum) {
  timing_wheel wheel({.start_ns = epoch_2026});
  wheel.add(epoch_2026 + 3 * day + 17, 1);
  wheel.add(epoch_2026 + 3 * day + 5, 2);
  wheel.add(epoch_2026 + 4 * day, 3);
  EXPECT_EQ(wheel.earliest_due_exact(), epoch_2026 + 3 * day + 5);
  EXPECT_LE(*wheel.next_due(), epoch_2026 + 3 * day + 5);
}

// Randomized property test against a reference ordered set: for every pop the wheel returns
// exactly the reference's earliest entries with due <= now (so never early, in order, none
// missed), next_due() is never later than the true earliest, and size() agrees.
void run_property(std::uint64_t seed, std::int64_t tick_ns) {
  xoshiro_random rng(seed);
  std::int64_t now = epoch_2026 + static_cast<std::int64_t>(rng.uniform(1000 * second));
  timing_wheel wheel({.tick_ns = tick_ns, .start_ns = seed % 2 == 0 ? now : 0});
  std::set<std::pair<std::int64_t, std::uint64_t>> reference;
  std::uint64_t next_ref = 0;

  auto random_offset = [&]() -> std::int64_t {
    switch (rng.uniform(6)) {
      case 0: return -static_cast<std::int64_t>(rng.uniform(10 * second));      // past
      case 1: return static_cast<std::int64_t>(rng.uniform(3 * tick_ns));       // within ticks
      case 2: return static_cast<std::int64_t>(rng.uniform(2 * second));        // near
      case 3: return static_cast<std::int64_t>(rng.uniform(10 * 60 * second));  // minutes
      case 4: return static_cast<std::int64_t>(rng.uniform(7 * day));           // days
      default: return 0;                                                        // exactly now
    }
  };
  auto random_gap = [&]() -> std::int64_t {
    switch (rng.uniform(5)) {
      case 0: return 0;
      case 1: return static_cast<std::int64_t>(rng.uniform(tick_ns));
      case 2: return static_cast<std::int64_t>(rng.uniform(300 * ms));
      case 3: return static_cast<std::int64_t>(rng.uniform(100 * second));
      default: return static_cast<std::int64_t>(rng.uniform(2 * day));
    }
  };

  for (int step = 0; step < 2000; ++step) {
    const std::uint64_t inserts = rng.uniform(20);
    for (std::uint64_t i = 0; i < inserts; ++i) {
      const std::int64_t due = now + random_offset();
      wheel.add(due, next_ref);
      reference.emplace(due, next_ref);
      ++next_ref;
    }
    if (!reference.empty()) {
      ASSERT_TRUE(wheel.next_due().has_value());
      ASSERT_LE(*wheel.next_due(), reference.begin()->first) << "seed " << seed;
      ASSERT_EQ(wheel.earliest_due_exact(), reference.begin()->first) << "seed " << seed;
    } else {
      ASSERT_FALSE(wheel.next_due().has_value());
    }
    now += random_gap();
    const std::size_t max = rng.uniform(4) == 0 ? rng.uniform(5) : SIZE_MAX;
    std::vector<due_entry> out;
    ASSERT_TRUE(wheel.pop_due(now, out, max).ok());
    std::size_t expected_count = 0;
    for (auto it = reference.begin();
         it != reference.end() && it->first <= now && expected_count < max; ++it) {
      ASSERT_LT(expected_count, out.size()) << "missed an entry, seed " << seed;
      ASSERT_EQ(out[expected_count], (due_entry{it->first, it->second})) << "seed " << seed;
      ++expected_count;
    }
    ASSERT_EQ(out.size(), expected_count) << "seed " << seed;
    for (const due_entry& e : out) reference.erase({e.due_ns, e.ref});
    ASSERT_EQ(wheel.size(), reference.size());
  }
}

TEST(timing_wheel, randomized_against_reference_many_seeds) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    run_property(seed, ms);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(timing_wheel, randomized_with_odd_tick_lengths) {
  for (std::uint64_t seed = 100; seed < 110; ++seed) {
    run_property(seed, 1);
    if (::testing::Test::HasFatalFailure()) return;
    run_property(seed, 7 * ms + 3);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace outrider::timing
