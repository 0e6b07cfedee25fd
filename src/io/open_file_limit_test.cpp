#include "io/open_file_limit.h"

#include <sys/resource.h>

#include <gtest/gtest.h>

namespace outrider::io {
namespace {

rlimit current() {
  rlimit lim{};
  EXPECT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  return lim;
}

TEST(open_file_limit, raises_the_soft_limit_to_the_hard_limit_or_the_cap) {
  rlimit lim = current();
  // Start from a low soft limit, as systemd gives services.
  const rlim_t low = std::min<rlim_t>(lim.rlim_max, 256);
  lim.rlim_cur = low;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);

  const std::uint64_t cap = 4096;
  auto r = raise_open_file_limit(cap);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->soft_before, low);
  EXPECT_EQ(r->hard, lim.rlim_max);
  const std::uint64_t expected = std::min<std::uint64_t>(lim.rlim_max, cap);
  EXPECT_EQ(r->soft, expected);
  EXPECT_EQ(current().rlim_cur, expected);
}

TEST(open_file_limit, never_lowers_a_soft_limit_above_the_cap) {
  rlimit lim = current();
  const rlim_t soft = std::min<rlim_t>(lim.rlim_max, 2048);
  lim.rlim_cur = soft;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);

  auto r = raise_open_file_limit(/*cap=*/64);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->soft, soft);
  EXPECT_EQ(current().rlim_cur, soft);
}

}  // namespace
}  // namespace outrider::io
