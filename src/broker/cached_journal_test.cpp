#include "broker/cached_journal.h"

#include <gtest/gtest.h>

#include "broker/record_format.h"

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

TEST(cached_journal, admit_predicate_keeps_scheduled_publishes_out) {
  counting_journal base;
  cached_journal j(base, 1 << 20, {static_cast<std::uint8_t>(record_type::publish)},
                   [](std::uint8_t, std::string_view p) { return !is_scheduled_publish(p); });
  publish_record now;
  now.id = id128{1, 1};
  now.published_at_ns = now.deliver_at_ns = 1000;
  now.destinations = {"q"};
  now.body = "ready";
  publish_record later = now;
  later.id = id128{1, 2};
  later.deliver_at_ns = 2000;
  later.body = "scheduled";
  EXPECT_FALSE(is_scheduled_publish(encode(now)));
  EXPECT_TRUE(is_scheduled_publish(encode(later)));
  EXPECT_FALSE(is_scheduled_publish("\x01short"));
  constexpr auto publish = static_cast<std::uint8_t>(record_type::publish);
  auto a = j.append(publish, encode(now));
  auto b = j.append(publish, encode(later));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(j.cached_records(), 1U);
  ASSERT_TRUE(j.read(*b));  // read through
  EXPECT_EQ(base.reads, 1);
  ASSERT_TRUE(j.read(*a));  // cached
  EXPECT_EQ(base.reads, 1);
}

}  // namespace
}  // namespace outrider::broker

namespace outrider::broker {
namespace {

// append_owned() keeps the caller's string itself; what is cached and what the
// wrapped journal holds are the same bytes either way.
TEST(cached_journal, append_owned_caches_the_payload_it_is_given) {
  counting_journal base;
  cached_journal j(base, 100, {10});
  auto a = j.append_owned(10, std::string("published"));
  auto b = j.append_owned(11, std::string("an ack"));
  ASSERT_TRUE(a && b);
  auto ra = j.read(*a);
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->payload, "published");
  EXPECT_EQ(base.reads, 0);
  auto rb = j.read(*b);  // not a cached type: read through
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->payload, "an ack");
  EXPECT_EQ(base.reads, 1);
  auto stored = base.inner.read(*a);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->payload, "published");
  EXPECT_EQ(j.cached_bytes(), std::string("published").size());
}

}  // namespace
}  // namespace outrider::broker
