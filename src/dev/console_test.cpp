#include "dev/console.h"

#include <gtest/gtest.h>

namespace outrider::dev {
namespace {

TEST(console, fit_columns_cuts_whole_utf8_characters) {
  EXPECT_EQ(console::fit_columns("storefront", 5), "store");
  EXPECT_EQ(console::fit_columns("short", 80), "short");
  EXPECT_EQ(console::fit_columns("", 3), "");
  EXPECT_EQ(console::fit_columns("abc", 0), "");
  // "… 3 more" starts with a 3-byte character: it counts one column and is never split.
  EXPECT_EQ(console::fit_columns("\xE2\x80\xA6 3 more", 1), "\xE2\x80\xA6");
  EXPECT_EQ(console::fit_columns("\xE2\x80\xA6 3 more", 3), "\xE2\x80\xA6 3");
  // Two-byte (é) and four-byte (an emoji) characters.
  EXPECT_EQ(console::fit_columns("caf\xC3\xA9 ok", 4), "caf\xC3\xA9");
  EXPECT_EQ(console::fit_columns("\xF0\x9F\x93\xA6\xF0\x9F\x93\xA6x", 2),
            "\xF0\x9F\x93\xA6\xF0\x9F\x93\xA6");
}

}  // namespace
}  // namespace outrider::dev
