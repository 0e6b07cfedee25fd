#include "base/result.h"

#include <gtest/gtest.h>
#include <memory>

namespace outrider {
namespace {

result<int> half(int x) {
  if (x % 2 != 0) return error(errc::invalid_argument, "odd");
  return x / 2;
}

status chain(int x) {
  OUTRIDER_TRY(half(x));
  return {};
}

TEST(result, holds_value_or_error) {
  auto a = half(8);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 4);
  auto b = half(3);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::invalid_argument);
  EXPECT_EQ(b.error().message, "odd");
  EXPECT_EQ(b.value_or(-1), -1);
}

TEST(result, try_propagates) {
  EXPECT_TRUE(chain(2));
  auto s = chain(3);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::invalid_argument);
}

TEST(result, move_only_values) {
  result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r);
  auto p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(result, error_without_message_uses_catalog_meaning) {
  error e(errc::disk_full);
  EXPECT_EQ(e.message, describe(errc::disk_full).meaning);
  EXPECT_EQ(e.info().http_status, 507);
}

TEST(result_death, value_of_error_asserts) {
  EXPECT_DEATH(
      {
        auto r = half(3);
        (void)r.value();
      },
      "assertion failed");
}

}  // namespace
}  // namespace outrider
