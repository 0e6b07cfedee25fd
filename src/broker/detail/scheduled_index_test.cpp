#include "broker/detail/scheduled_index.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <map>

#include "base/random.h"
#include "io/mem_file_system.h"

namespace outrider::broker::detail {
namespace {

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(broker_scheduled_index, colliding_fingerprints_keep_every_position) {
  scheduled_index index;
  index.insert(42, 1);
  index.insert(42, 2);
  index.insert(43, 3);
  EXPECT_EQ(sorted(index.find(42)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_TRUE(index.erase(42, 1));
  EXPECT_FALSE(index.erase(42, 1));
  EXPECT_EQ(index.find(42), std::vector<std::uint64_t>{2});
  EXPECT_TRUE(index.contains(43, 3));
  EXPECT_EQ(index.size(), 2U);
}

TEST(broker_scheduled_index, matches_a_reference_multimap_under_random_churn) {
  scheduled_index index;
  std::multimap<std::uint64_t, std::uint64_t> reference;
  xoshiro_random rng(11);
  for (std::uint64_t step = 0; step < 50000; ++step) {
    // A small key space forces repeated fingerprints (collisions) and wrap-around.
    const std::uint64_t fp = scheduled_index::fingerprint(id128{rng.uniform(5000), 0});
    if (rng.uniform(3) != 0 || reference.empty()) {
      index.insert(fp, step);
      reference.emplace(fp, step);
    } else {
      auto it = reference.lower_bound(fp);
      if (it == reference.end()) it = reference.begin();
      ASSERT_TRUE(index.erase(it->first, it->second));
      reference.erase(it);
    }
    if (step % 997 == 0) {
      std::vector<std::uint64_t> expected;
      for (auto [a, b] = reference.equal_range(fp); a != b; ++a) expected.push_back(a->second);
      ASSERT_EQ(sorted(index.find(fp)), sorted(expected));
    }
  }
  EXPECT_EQ(index.size(), reference.size());
  for (const auto& [fp, position] : reference) ASSERT_TRUE(index.contains(fp, position));
}

TEST(broker_scheduled_index, costs_at_most_18_bytes_per_entry) {
  scheduled_index index;
  constexpr std::uint64_t entries = 1'000'000;
  for (std::uint64_t i = 0; i < entries; ++i) {
    index.insert(scheduled_index::fingerprint(id128{i, i * 3}), i << 20);
  }
  // 12-byte slots at a load factor between 7/10 (just grown) and 7/8, plus
  // 32 KiB of shard headers.
  EXPECT_LE(index.memory_bytes() / entries, 18U);
  for (std::uint64_t i = 0; i < entries; i += 997) {
    ASSERT_TRUE(index.contains(scheduled_index::fingerprint(id128{i, i * 3}), i << 20));
  }
}

TEST(broker_scheduled_index, keeps_positions_above_32_bits_and_shrinks_when_emptied) {
  scheduled_index index;
  const std::size_t empty_bytes = index.memory_bytes();
  constexpr std::uint64_t entries = 100'000;
  constexpr std::uint64_t big = std::uint64_t{0xABCDE} << 40;  // segment << 40 | offset
  for (std::uint64_t i = 0; i < entries; ++i) {
    index.insert(scheduled_index::fingerprint(id128{i, 7}), big | i);
  }
  EXPECT_EQ(index.find(scheduled_index::fingerprint(id128{5, 7})),
            std::vector<std::uint64_t>{big | 5});
  for (std::uint64_t i = 0; i < entries; ++i) {
    ASSERT_TRUE(index.erase(scheduled_index::fingerprint(id128{i, 7}), big | i));
  }
  EXPECT_EQ(index.size(), 0U);
  // Every shard is back at its minimal 16 slots.
  EXPECT_LE(index.memory_bytes(), empty_bytes + 1024 * 16 * 12);
}

TEST(broker_scheduled_index, fingerprint_is_never_zero_and_mixes_both_halves) {
  EXPECT_NE(scheduled_index::fingerprint(id128{}), 0U);
  EXPECT_NE(scheduled_index::fingerprint(id128{1, 0}), scheduled_index::fingerprint(id128{0, 1}));
}

TEST(broker_scheduled_index, save_and_load_give_back_the_same_index) {
  scheduled_index index;
  for (std::uint64_t i = 0; i < 20'000; ++i) {
    index.insert(scheduled_index::fingerprint(id128{i, 11}), (std::uint64_t{3} << 40) | i);
  }
  for (std::uint64_t i = 0; i < 20'000; i += 3) {
    ASSERT_TRUE(
        index.erase(scheduled_index::fingerprint(id128{i, 11}), (std::uint64_t{3} << 40) | i));
  }
  io::mem_file_system fs;
  auto out = checkpoint_writer::create(fs, "index");
  ASSERT_TRUE(out);
  index.save(**out);
  ASSERT_TRUE((*out)->finish());
  auto in = checkpoint_reader::open(fs, "index");
  ASSERT_TRUE(in);
  scheduled_index loaded;
  loaded.insert(scheduled_index::fingerprint(id128{1, 1}), 1);  // replaced by load()
  ASSERT_TRUE(loaded.load(**in));
  EXPECT_TRUE((*in)->at_end());
  EXPECT_EQ(loaded.size(), index.size());
  EXPECT_EQ(loaded.memory_bytes(), index.memory_bytes());
  for (std::uint64_t i = 0; i < 20'000; ++i) {
    const auto fp = scheduled_index::fingerprint(id128{i, 11});
    EXPECT_EQ(loaded.find(fp), index.find(fp));
  }
  // Still a working index: inserts and erases after the load.
  loaded.insert(scheduled_index::fingerprint(id128{0, 11}), 42);
  EXPECT_TRUE(
      loaded.erase(scheduled_index::fingerprint(id128{1, 11}), (std::uint64_t{3} << 40) | 1));
}

TEST(broker_scheduled_index, a_snapshot_keeps_its_contents_while_the_index_changes) {
  auto pos = [](std::uint64_t i) { return (std::uint64_t{5} << 40) | i; };
  auto fp = [](std::uint64_t i) { return scheduled_index::fingerprint(id128{i, 7}); };
  auto expect_live = [&](const scheduled_index& index) {
    for (std::uint64_t i = 0; i < 30'000; ++i) {
      const bool live = i >= 10'000 || i % 2 == 1;
      ASSERT_EQ(index.contains(fp(i), pos(i)), live) << i;
      ASSERT_EQ(index.find(fp(i)).size(), live ? 1U : 0U) << i;
    }
    EXPECT_EQ(index.size(), 25'000U);
  };
  scheduled_index index;
  for (std::uint64_t i = 0; i < 10'000; ++i) index.insert(fp(i), pos(i));
  scheduled_index::snapshot snap = index.freeze();
  // Change every shard after the snapshot: erase some, insert more. The
  // changes wait aside, and lookups see them.
  for (std::uint64_t i = 0; i < 10'000; i += 2) ASSERT_TRUE(index.erase(fp(i), pos(i)));
  EXPECT_FALSE(index.erase(fp(0), pos(0)));
  for (std::uint64_t i = 10'000; i < 30'000; ++i) index.insert(fp(i), pos(i));
  EXPECT_EQ(index.deferred(), 25'000U);
  expect_live(index);
  io::mem_file_system fs;
  auto out = checkpoint_writer::create(fs, "snap");
  ASSERT_TRUE(out);
  scheduled_index::save_snapshot(snap, **out);
  ASSERT_TRUE((*out)->finish());
  auto in = checkpoint_reader::open(fs, "snap");
  ASSERT_TRUE(in);
  scheduled_index loaded;
  ASSERT_TRUE(loaded.load(**in));
  EXPECT_EQ(loaded.size(), 10'000U);
  for (std::uint64_t i = 0; i < 30'000; ++i) {
    ASSERT_EQ(loaded.contains(fp(i), pos(i)), i < 10'000) << i;
  }
  // Written: the next change thaws the index and applies what waited.
  index.insert(fp(40'000), pos(40'000));
  ASSERT_TRUE(index.erase(fp(40'000), pos(40'000)));
  EXPECT_EQ(index.deferred(), 0U);
  expect_live(index);
}

TEST(broker_scheduled_index, a_dropped_snapshot_thaws_the_index) {
  scheduled_index index;
  const auto fp = scheduled_index::fingerprint(id128{1, 2});
  {
    auto snap = index.freeze();
    index.insert(fp, 10);
    EXPECT_EQ(index.deferred(), 1U);
  }
  index.insert(fp, 11);
  EXPECT_EQ(index.deferred(), 0U);
  EXPECT_TRUE(index.contains(fp, 10));
  EXPECT_TRUE(index.contains(fp, 11));
  auto again = index.freeze();  // a new snapshot may be taken
  EXPECT_EQ(index.size(), 2U);
}

}  // namespace
}  // namespace outrider::broker::detail
