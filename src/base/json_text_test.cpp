#include "base/json_text.h"

#include <gtest/gtest.h>

namespace outrider {
namespace {

TEST(json_text, escapes_specials_and_controls) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c\nd\x01"), R"("a\"b\\c\nd\u0001")");
  EXPECT_EQ(json_string("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(json_string(std::string_view("\0", 1)), R"("\u0000")");
}

}  // namespace
}  // namespace outrider
