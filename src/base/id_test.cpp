#include "base/id.h"

#include <gtest/gtest.h>
#include <set>
#include <string>
#include <vector>

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

// to_chars() (eight digits at a time) against the digit-by-digit definition:
// digit i of 26 is bits 5 * (25 - i) .. + 4 of the 128-bit value.
TEST(id128, to_chars_matches_digit_by_digit_base32) {
  const auto reference = [](id128 id) {
    std::string out(id128::text_size, '?');
    for (std::size_t i = id128::text_size; i-- > 0;) {
      out[i] = "0123456789abcdefghjkmnpqrstvwxyz"[id.low & 31];
      id.low = (id.low >> 5) | (id.high << 59);
      id.high >>= 5;
    }
    return out;
  };
  std::vector<id128> ids = {id128{}, id128{UINT64_MAX, UINT64_MAX}, id128{0, 1}, id128{1, 0}};
  for (int bit = 0; bit < 128; ++bit) {  // each bit alone, and all bits but it
    const id128 one =
        bit < 64 ? id128{0, std::uint64_t{1} << bit} : id128{std::uint64_t{1} << (bit - 64), 0};
    ids.push_back(one);
    ids.push_back(id128{~one.high, ~one.low});
  }
  for (std::uint64_t d = 0; d < 32; ++d) {  // every digit value in every position
    for (int pos = 0; pos < 125; pos += 5) {
      if (pos < 64) {
        ids.push_back(id128{pos == 0 ? 0 : d >> (64 - pos), d << pos});
      } else {
        ids.push_back(id128{d << (pos - 64), 0});
      }
    }
  }
  xoshiro_random rng(3);
  for (int i = 0; i < 2000; ++i) ids.push_back(id128::random(rng));
  for (const auto& id : ids) {
    const auto chars = id.to_chars();
    ASSERT_EQ(std::string_view(chars.data(), chars.size()), reference(id))
        << std::hex << id.high << " " << id.low;
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
