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

TEST(json_text, copies_runs_between_escapes) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("\"\""), R"("\"\"")");
  EXPECT_EQ(json_string("long run before\tand after\x1f"), R"("long run before\tand after\u001f")");
  EXPECT_EQ(json_string("\\end"), R"("\\end")");
  std::string out = "x";
  append_json_string(out, "a\rb");
  EXPECT_EQ(out, R"(x"a\rb")");
}

}  // namespace
}  // namespace outrider
