#include "broker/journal.h"

#include <gtest/gtest.h>

namespace outrider::broker {
namespace {

TEST(broker_mem_journal, appends_reads_and_replays_in_order) {
  mem_journal j;
  auto a = j.append(1, "alpha");
  auto b = j.append(2, "beta");
  ASSERT_TRUE(a && b);
  EXPECT_LT(*a, *b);
  EXPECT_EQ(j.read(*b)->payload, "beta");
  EXPECT_EQ(j.read(*b)->type, 2);
  EXPECT_EQ(j.read(*a + 1).error().code, errc::not_found);
  std::vector<std::string> seen;
  ASSERT_TRUE(j.replay(*b, [&](const journal_record& r) {
    seen.push_back(r.payload);
    return ok_status();
  }));
  EXPECT_EQ(seen, std::vector<std::string>{"beta"});
}

TEST(broker_mem_journal, replay_stops_at_the_first_visitor_error) {
  mem_journal j;
  ASSERT_TRUE(j.append(1, "a"));
  ASSERT_TRUE(j.append(1, "b"));
  int calls = 0;
  auto s = j.replay(0, [&](const journal_record&) -> status {
    ++calls;
    return error(errc::data_corruption, "bad");
  });
  EXPECT_EQ(s.error().code, errc::data_corruption);
  EXPECT_EQ(calls, 1);
}

TEST(broker_mem_journal, remove_before_and_failing_appends) {
  mem_journal j;
  auto a = j.append(1, "a");
  auto b = j.append(1, "b");
  ASSERT_TRUE(a && b);
  j.remove_before(*b);
  EXPECT_FALSE(j.read(*a));
  EXPECT_TRUE(j.read(*b));
  j.fail_appends_for_test(true);
  EXPECT_EQ(j.append(1, "c").error().code, errc::disk_full);
  EXPECT_EQ(j.record_count(), 1U);
}

}  // namespace
}  // namespace outrider::broker
