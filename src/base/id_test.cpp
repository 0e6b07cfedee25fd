#include "base/id.h"

#include <gtest/gtest.h>
#include <set>

namespace outrider {
namespace {

TEST(id128, text_round_trip_and_alphabet) {
  xoshiro_random rng(42);
  for (int i = 0; i < 1000; ++i) {
    auto id = id128::random(rng);
    auto text = id.to_string();
    ASSERT_EQ(text.size(), id128::text_size);
    for (char c : text) {
      EXPECT_NE(std::string_view("0123456789abcdefghjkmnpqrstvwxyz").find(c),
                std::string_view::npos);
    }
    EXPECT_EQ(id128::parse(text), id);
    EXPECT_EQ(id128::parse_hex(id.to_hex()), id);
    const auto chars = id.to_chars();
    EXPECT_EQ(std::string_view(chars.data(), chars.size()), text);
  }
}

TEST(id128, extremes_and_bad_input) {
  id128 max{UINT64_MAX, UINT64_MAX};
  EXPECT_EQ(max.to_string(), "7zzzzzzzzzzzzzzzzzzzzzzzzz");
  EXPECT_EQ(id128::parse(max.to_string()), max);
  EXPECT_EQ(id128{}.to_string(), std::string(26, '0'));
  EXPECT_FALSE(id128::parse("8zzzzzzzzzzzzzzzzzzzzzzzzz"));  // overflow
  EXPECT_FALSE(id128::parse("short"));
  EXPECT_FALSE(id128::parse("0000000000000000000000000u"));        // 'u' excluded
  EXPECT_EQ(id128::parse("0000000000000000000000000O"), id128{});  // Crockford alias, any case
  EXPECT_FALSE(id128::parse_hex("0123456789abcdef0123456789abcdeg"));
}

TEST(id128, ordering_matches_text_ordering) {
  xoshiro_random rng(7);
  for (int i = 0; i < 1000; ++i) {
    auto a = id128::random(rng);
    auto b = id128::random(rng);
    EXPECT_EQ(a < b, a.to_string() < b.to_string());
  }
}

TEST(id128, time_ordered_ids_sort_by_time) {
  xoshiro_random rng(1);
  auto t = simulated_clock::default_start();
  auto a = id128::time_ordered(t, rng);
  auto b = id128::time_ordered(t + std::chrono::milliseconds(1), rng);
  EXPECT_LT(a, b);
  EXPECT_LT(a.to_string(), b.to_string());
}

TEST(id128, random_ids_do_not_collide) {
  std::set<id128> seen;
  for (int i = 0; i < 100000; ++i) {
    EXPECT_TRUE(seen.insert(id128::random()).second);
  }
}

}  // namespace
}  // namespace outrider
