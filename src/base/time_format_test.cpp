#include "base/time_format.h"

#include <gtest/gtest.h>

namespace outrider {
namespace {

using namespace std::chrono_literals;

TEST(parse_duration, accepts_go_style_and_days) {
  EXPECT_EQ(*parse_duration("90s"), 90s);
  EXPECT_EQ(*parse_duration("1h30m"), 90min);
  EXPECT_EQ(*parse_duration("1.5h"), 90min);
  EXPECT_EQ(*parse_duration("7d"), 7 * 24h);
  EXPECT_EQ(*parse_duration("2w"), 14 * 24h);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("10us"), 10us);
  EXPECT_EQ(*parse_duration("10\xC2\xB5s"), 10us);
  EXPECT_EQ(*parse_duration("5ns"), 5ns);
  EXPECT_EQ(*parse_duration("0"), 0s);
  EXPECT_EQ(*parse_duration("1d2h3m4s5ms"), 24h + 2h + 3min + 4s + 5ms);
}

TEST(parse_duration, rejects_bad_input_with_clear_errors) {
  for (const char* bad : {"", "-5s", "5", "s", "5x", "1..5s", "1h-", "99999999999999h", "."}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_NE(r.error().message.find("invalid duration"), std::string::npos);
  }
}

TEST(format_duration, round_trips) {
  for (auto d : {nanoseconds(0s), nanoseconds(90s), nanoseconds(7 * 24h), nanoseconds(1500ms),
                 nanoseconds(3ns), nanoseconds(24h + 1min + 7us)}) {
    EXPECT_EQ(*parse_duration(format_duration(d)), d) << format_duration(d);
  }
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(7 * 24h), "7d");
}

TEST(rfc3339, parses_zones_and_fractions) {
  auto t = parse_rfc3339("2026-01-01T00:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, simulated_clock::default_start());
  EXPECT_EQ(*parse_rfc3339("2026-01-01T02:00:00+02:00"), *t);
  EXPECT_EQ(*parse_rfc3339("2025-12-31t19:00:00-05:00"), *t);
  EXPECT_EQ(*parse_rfc3339("2026-01-01T00:00:00.123456789Z"), *t + 123456789ns);
  EXPECT_EQ(*parse_rfc3339("2026-01-01 00:00:00.5z"), *t + 500ms);
}

TEST(rfc3339, rejects_bad_input) {
  for (const char* bad : {"", "2026-01-01", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00Zjunk",
                          "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+2:00"}) {
    auto r = parse_rfc3339(bad);
    EXPECT_FALSE(r) << bad;
  }
}

TEST(rfc3339, formats_and_round_trips) {
  auto t = simulated_clock::default_start() + 36h + 1234ms;
  EXPECT_EQ(format_rfc3339(t), "2026-01-02T12:00:01.234Z");
  EXPECT_EQ(format_rfc3339(t, 0), "2026-01-02T12:00:01Z");
  EXPECT_EQ(*parse_rfc3339(format_rfc3339(t, 9)), t);
  auto before_epoch = wall_time{} - 1500ms;
  EXPECT_EQ(format_rfc3339(before_epoch), "1969-12-31T23:59:58.500Z");
}

TEST(rfc3339, formats_every_field_zero_padded) {
  using namespace std::chrono;
  const wall_time t = sys_days{year{2026} / 3 / 4} + 5h + 6min + 7s + 8ms + 9us + 10ns;
  EXPECT_EQ(format_rfc3339(t, 0), "2026-03-04T05:06:07Z");
  EXPECT_EQ(format_rfc3339(t, 3), "2026-03-04T05:06:07.008Z");
  EXPECT_EQ(format_rfc3339(t, 6), "2026-03-04T05:06:07.008009Z");
  EXPECT_EQ(format_rfc3339(t, 9), "2026-03-04T05:06:07.008009010Z");
  // wall_time (nanoseconds) spans 1677-2262.
  const wall_time last = sys_days{year{2199} / 12 / 31} + 23h + 59min + 59s + 999ms;
  EXPECT_EQ(format_rfc3339(last), "2199-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(sys_days{year{1700} / 1 / 1}, 0), "1700-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(wall_time{}, 9), "1970-01-01T00:00:00.000000000Z");
  // Other digit counts mean none, as before.
  EXPECT_EQ(format_rfc3339(t, 2), "2026-03-04T05:06:07Z");
}

}  // namespace
}  // namespace outrider
