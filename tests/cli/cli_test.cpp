// The outrider binary as a user runs it.
#include <gtest/gtest.h>

#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::outrider_binary;
using testing::process;

TEST(outrider_cli, version_prints_version_and_exits_zero) {
  process p({outrider_binary(), "version"});
  EXPECT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.output().find("outrider 0."), std::string::npos) << p.output();
}

TEST(outrider_cli, help_lists_subcommands) {
  process p({outrider_binary(), "--help"});
  EXPECT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.output().find("version"), std::string::npos) << p.output();
}

TEST(outrider_cli, unknown_subcommand_fails_with_message) {
  process p({outrider_binary(), "frobnicate"});
  auto code = p.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
  EXPECT_FALSE(p.output().empty());
}

}  // namespace
}  // namespace outrider
