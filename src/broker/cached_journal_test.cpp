#include "broker/cached_journal.h"

#include <gtest/gtest.h>

namespace outrider::broker {
namespace {

// Counts reads that reach the wrapped journal.
class counting_journal final : public journal {
 public:
  result<std::uint64_t> append(std::uint8_t type, std::string_view payload) override {
    return inner.append(type, payload);
  }
  result<journal_record> read(std::uint64_t position) override {
    ++reads;
    return inner.read(position);
  }
  status replay(std::uint64_t from, const visitor& fn) override { return inner.replay(from, fn); }
  mem_journal inner;
  int reads = 0;
};

TEST(cached_journal, serves_recent_records_of_cached_types_from_memory) {
  counting_journal base;
  cached_journal j(base, 100, {10});
  auto a = j.append(10, "published");
  auto b = j.append(11, "an ack");
  ASSERT_TRUE(a && b);
  auto ra = j.read(*a);
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->payload, "published");
  EXPECT_EQ(ra->type, 10);
  EXPECT_EQ(base.reads, 0);
  auto rb = j.read(*b);  // not a cached type: read through
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->payload, "an ack");
  EXPECT_EQ(base.reads, 1);
}

TEST(cached_journal, evicts_oldest_beyond_budget_and_reads_through) {
  counting_journal base;
  cached_journal j(base, 10, {10});
  auto first = j.append(10, "aaaaaa");
  auto second = j.append(10, "bbbbbb");  // evicts the first (12 > 10)
  ASSERT_TRUE(first && second);
  EXPECT_EQ(j.cached_records(), 1U);
  EXPECT_LE(j.cached_bytes(), 10U);
  auto r = j.read(*first);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload, "aaaaaa");
  EXPECT_EQ(base.reads, 1);
  EXPECT_EQ(j.read(*second)->payload, "bbbbbb");
  EXPECT_EQ(base.reads, 1);
  auto big = j.append(10, std::string(50, 'x'));  // larger than the budget: never cached
  ASSERT_TRUE(big);
  EXPECT_EQ(j.read(*big)->payload.size(), 50U);
  EXPECT_EQ(base.reads, 2);
}

TEST(cached_journal, failed_append_caches_nothing) {
  counting_journal base;
  cached_journal j(base, 100, {10});
  base.inner.fail_appends_for_test(true);
  EXPECT_FALSE(j.append(10, "x"));
  EXPECT_EQ(j.cached_records(), 0U);
}

}  // namespace
}  // namespace outrider::broker
