#include "base/random.h"

#include <array>
#include <gtest/gtest.h>

namespace outrider {
namespace {

TEST(random, seeded_is_reproducible) {
  xoshiro_random a(123);
  xoshiro_random b(123);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(random, uniform_covers_range_roughly_evenly) {
  xoshiro_random rng(9);
  std::array<int, 10> buckets{};
  for (int i = 0; i < 100000; ++i) ++buckets[rng.uniform(10)];
  for (int count : buckets) {
    EXPECT_GT(count, 9000);
    EXPECT_LT(count, 11000);
  }
  for (int i = 0; i < 1000; ++i) {
    double u = rng.unit();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(random, os_bytes_are_not_constant) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  os_random_bytes(&a, sizeof(a));
  os_random_bytes(&b, sizeof(b));
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace outrider
