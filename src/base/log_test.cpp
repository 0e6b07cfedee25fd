#include "base/log.h"

#include <gtest/gtest.h>

namespace outrider {
namespace {

TEST(log, parse_level_and_format) {
  EXPECT_EQ(*log::parse_level("DEBUG"), log::level::debug);
  EXPECT_EQ(*log::parse_level("warning"), log::level::warn);
  EXPECT_FALSE(log::parse_level("loud"));
  EXPECT_EQ(*log::parse_format("json"), log::format::json);
  EXPECT_FALSE(log::parse_format("xml"));
}

TEST(log, level_filtering) {
  log::set_level(log::level::warn);
  EXPECT_FALSE(log::enabled(log::level::info));
  EXPECT_TRUE(log::enabled(log::level::error));
  log::set_level(log::level::off);
  EXPECT_FALSE(log::enabled(log::level::critical));
  log::set_level(log::level::info);
}

TEST(log, json_lines_are_escaped) {
  log::init({.min_level = log::level::info, .output = log::format::json});
  testing::internal::CaptureStderr();
  const log::logger l{"test"};
  l.info("quote \" backslash \\ newline \n ctl \x01 value {}", 42);
  log::flush();
  auto out = testing::internal::GetCapturedStderr();
  log::init({});
  EXPECT_NE(out.find(R"("level":"info")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("component":"test")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"(quote \" backslash \\ newline \n ctl \u0001 value 42)"), std::string::npos)
      << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "one record, one line";
}

}  // namespace
}  // namespace outrider
