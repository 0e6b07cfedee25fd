#include "timing/disk_scheduler.h"

#include <algorithm>
#include <cstdint>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "base/random.h"
#include "io/mem_file_system.h"
#include "timing/delay_index_format.h"

namespace outrider::timing {
namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t second = 1000 * ms;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t day = 86'400 * second;
constexpr std::int64_t epoch_2026 = 1'767'225'600 * second;
constexpr const char* dir = "data/delay";

disk_scheduler_options small_options() {
  return {.bucket_width_ns = 10 * second,
          .load_ahead_ns = 2 * second,
          .max_buffered_entries = 64,
          .tick_ns = ms};
}

std::unique_ptr<disk_scheduler> open_ok(io::file_system& fs, std::uint64_t expected_high_water,
                                        disk_scheduler_options options = small_options()) {
  auto opened = disk_scheduler::open(fs, dir, options);
  EXPECT_TRUE(opened.ok()) << (opened ? "" : opened.error().message);
  if (!opened) return nullptr;
  EXPECT_EQ(opened->high_water, expected_high_water);
  return std::move(opened->scheduler);
}

// Pops everything due at `now`, checking nothing is early.
std::vector<due_entry> pop_all(scheduler& s, std::int64_t now) {
  std::vector<due_entry> out;
  auto n = s.pop_due(now, out, SIZE_MAX);
  EXPECT_TRUE(n.ok()) << (n ? "" : n.error().message);
  for (const due_entry& e : out) EXPECT_LE(e.due_ns, now) << "fired early";
  return out;
}

TEST(disk_scheduler, far_entries_stay_on_disk_until_near) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0);
  ASSERT_TRUE(s);
  EXPECT_TRUE(pop_all(*s, epoch_2026).empty());
  ASSERT_TRUE(s->insert(epoch_2026 + 7 * day, 1).ok());
  ASSERT_TRUE(s->insert(epoch_2026 + 3 * day, 2).ok());
  ASSERT_TRUE(s->insert(epoch_2026 + 500 * ms, 3).ok());
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(s->loaded_entries(), 1u);  // only the one within the loaded horizon
  ASSERT_TRUE(s->next_due().has_value());
  EXPECT_LE(*s->next_due(), epoch_2026 + 500 * ms);

  EXPECT_EQ(pop_all(*s, epoch_2026 + second), (std::vector<due_entry>{{epoch_2026 + 500 * ms, 3}}));
  // The next wake-up is early enough to load the 3-day bucket before it is due.
  ASSERT_TRUE(s->next_due().has_value());
  EXPECT_LE(*s->next_due(), epoch_2026 + 3 * day - small_options().load_ahead_ns);
  EXPECT_TRUE(pop_all(*s, epoch_2026 + 3 * day - 1).empty());
  EXPECT_EQ(s->loaded_entries(), 1u);
  EXPECT_EQ(pop_all(*s, epoch_2026 + 3 * day), (std::vector<due_entry>{{epoch_2026 + 3 * day, 2}}));
  EXPECT_EQ(pop_all(*s, epoch_2026 + 8 * day), (std::vector<due_entry>{{epoch_2026 + 7 * day, 1}}));
  EXPECT_EQ(s->size(), 0u);
}

TEST(disk_scheduler, rejects_bad_options) {
  io::mem_file_system fs;
  auto opened = disk_scheduler::open(fs, dir, {.bucket_width_ns = 0});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, errc::invalid_argument);
}

// The same property as the wheel's: every pop returns exactly the reference's earliest entries due
// by `now`. Checkpoints and flushes are interleaved; buffers are small so files are written often.
TEST(disk_scheduler, randomized_against_reference) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    io::mem_file_system fs(seed);
    xoshiro_random rng(seed);
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    std::set<std::pair<std::int64_t, std::uint64_t>> reference;
    std::int64_t now = epoch_2026;
    std::uint64_t next_ref = 0;
    for (int step = 0; step < 600; ++step) {
      const std::uint64_t inserts = rng.uniform(20);
      for (std::uint64_t i = 0; i < inserts; ++i) {
        std::int64_t offset = 0;
        switch (rng.uniform(5)) {
          case 0: offset = -static_cast<std::int64_t>(rng.uniform(30 * second)); break;
          case 1: offset = static_cast<std::int64_t>(rng.uniform(3 * second)); break;
          case 2: offset = static_cast<std::int64_t>(rng.uniform(5 * minute)); break;
          case 3: offset = static_cast<std::int64_t>(rng.uniform(7 * day)); break;
          default: break;
        }
        ASSERT_TRUE(s->insert(now + offset, next_ref).ok());
        reference.emplace(now + offset, next_ref++);
      }
      if (!reference.empty()) {
        ASSERT_TRUE(s->next_due().has_value());
        ASSERT_LE(*s->next_due(), reference.begin()->first) << "seed " << seed;
      }
      switch (rng.uniform(4)) {
        case 0: now += static_cast<std::int64_t>(rng.uniform(50 * ms)); break;
        case 1: now += static_cast<std::int64_t>(rng.uniform(20 * second)); break;
        case 2: now += static_cast<std::int64_t>(rng.uniform(4 * minute)); break;
        default: now += static_cast<std::int64_t>(rng.uniform(day / 4)); break;
      }
      const std::size_t max = rng.uniform(4) == 0 ? rng.uniform(5) : SIZE_MAX;
      std::vector<due_entry> out;
      ASSERT_TRUE(s->pop_due(now, out, max).ok());
      std::size_t expected = 0;
      for (auto it = reference.begin(); it != reference.end() && it->first <= now && expected < max;
           ++it, ++expected) {
        ASSERT_LT(expected, out.size()) << "missed an entry, seed " << seed;
        ASSERT_EQ(out[expected], (due_entry{it->first, it->second})) << "seed " << seed;
      }
      ASSERT_EQ(out.size(), expected) << "seed " << seed;
      for (const due_entry& e : out) reference.erase({e.due_ns, e.ref});
      ASSERT_EQ(s->size(), reference.size()) << "seed " << seed;
      if (rng.uniform(10) == 0) {
        ASSERT_TRUE(s->checkpoint(static_cast<std::uint64_t>(step)).ok());
      }
    }
  }
}

// Crash recovery: checkpointed entries survive, entries popped before the checkpoint never fire
// again, everything inserted after it comes back exactly once through the caller's replay, and
// nothing fires early.
void run_crash_recovery(std::uint64_t seed, io::crash_mode mode) {
  io::mem_file_system fs(seed);
  xoshiro_random rng(seed);
  std::vector<due_entry> before;  // inserted before the checkpoint (A)
  std::vector<due_entry> after;   // inserted after it: the log tail the caller replays (B)
  std::set<std::uint64_t> fired_before_checkpoint;
  std::int64_t now = epoch_2026;
  std::uint64_t next_ref = 0;
  auto random_due = [&]() -> std::int64_t {
    switch (rng.uniform(4)) {
      case 0: return now - static_cast<std::int64_t>(rng.uniform(20 * second));
      case 1: return now + static_cast<std::int64_t>(rng.uniform(30 * second));
      case 2: return now + static_cast<std::int64_t>(rng.uniform(10 * minute));
      default: return now + static_cast<std::int64_t>(rng.uniform(7 * day));
    }
  };
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 200; ++i) {
        const due_entry e{random_due(), next_ref++};
        ASSERT_TRUE(s->insert(e.due_ns, e.ref).ok());
        before.push_back(e);
      }
      now += static_cast<std::int64_t>(rng.uniform(2 * minute));
      for (const due_entry& e : pop_all(*s, now)) fired_before_checkpoint.insert(e.ref);
    }
    ASSERT_TRUE(s->checkpoint(1234).ok());
    for (int i = 0; i < 300; ++i) {
      const due_entry e{random_due(), next_ref++};
      ASSERT_TRUE(s->insert(e.due_ns, e.ref).ok());
      after.push_back(e);
      if (i % 100 == 99) {
        now += static_cast<std::int64_t>(rng.uniform(minute));
        pop_all(*s, now);  // fired after the checkpoint: may fire again after the crash
      }
    }
    ASSERT_TRUE(s->flush().ok());  // unsynced bucket tails for the crash to drop or tear
    fs.crash_for_test(mode);
  }

  auto s = open_ok(fs, 1234);
  ASSERT_TRUE(s);
  for (const due_entry& e : after) ASSERT_TRUE(s->insert(e.due_ns, e.ref).ok());  // replay

  std::multiset<std::uint64_t> fired;
  for (std::int64_t t = now; t <= now + 8 * day; t += 5 * minute) {
    for (const due_entry& e : pop_all(*s, t)) fired.insert(e.ref);
  }
  EXPECT_EQ(s->size(), 0u);
  std::multiset<std::uint64_t> expected;
  for (const due_entry& e : before) {
    if (!fired_before_checkpoint.contains(e.ref)) expected.insert(e.ref);
  }
  for (const due_entry& e : after) expected.insert(e.ref);
  EXPECT_EQ(fired, expected) << "seed " << seed;
}

TEST(disk_scheduler, recovery_after_crash_dropping_unsynced) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    run_crash_recovery(seed, io::crash_mode::drop_unsynced);
  }
}

TEST(disk_scheduler, recovery_after_crash_tearing_tails) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_crash_recovery(seed, io::crash_mode::tear_tail);
}

TEST(disk_scheduler, recovery_twice_keeps_fired_entries_fired) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(epoch_2026 + 1 * second, 1).ok());
    ASSERT_TRUE(s->insert(epoch_2026 + 4 * second, 2).ok());
    ASSERT_TRUE(s->insert(epoch_2026 + 2 * day, 3).ok());
    EXPECT_EQ(pop_all(*s, epoch_2026 + 2 * second),
              (std::vector<due_entry>{{epoch_2026 + second, 1}}));
    ASSERT_TRUE(s->checkpoint(10).ok());
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  {
    auto s = open_ok(fs, 10);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->size(), 2u);
    ASSERT_TRUE(s->checkpoint(11).ok());  // nothing popped since open: must keep ref 1 fired
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto s = open_ok(fs, 11);
  ASSERT_TRUE(s);
  EXPECT_TRUE(pop_all(*s, epoch_2026 + 4 * second - 1).empty());
  EXPECT_EQ(pop_all(*s, epoch_2026 + 3 * day),
            (std::vector<due_entry>{{epoch_2026 + 4 * second, 2}, {epoch_2026 + 2 * day, 3}}));
}

TEST(disk_scheduler, past_due_entries_fire_at_once_after_restart) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    EXPECT_TRUE(pop_all(*s, epoch_2026).empty());
    for (std::uint64_t i = 0; i < 100; ++i) {
      ASSERT_TRUE(s->insert(epoch_2026 + static_cast<std::int64_t>(i) * minute, i).ok());
    }
    ASSERT_TRUE(s->checkpoint(5).ok());
  }
  auto s = open_ok(fs, 5);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->next_due().has_value());
  EXPECT_LE(*s->next_due(), epoch_2026);
  const auto fired = pop_all(*s, epoch_2026 + 49 * minute + 30 * second);  // down for 50 minutes
  ASSERT_EQ(fired.size(), 50u);
  for (std::size_t i = 0; i < fired.size(); ++i) EXPECT_EQ(fired[i].ref, i);
  EXPECT_EQ(s->size(), 50u);
}

TEST(disk_scheduler, disk_full_rejects_insert_and_adds_nothing) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, {.bucket_width_ns = 10 * second, .max_buffered_entries = 4});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->checkpoint(1).ok());
  fs.set_capacity_for_test(fs.used_bytes() + 100);  // room for one small block, not two
  std::vector<due_entry> accepted;
  status last = ok_status();
  for (std::uint64_t i = 0; i < 100 && last.ok(); ++i) {
    const std::int64_t due = epoch_2026 + static_cast<std::int64_t>(i) * day / 10;
    last = s->insert(due, i);
    if (last) accepted.push_back({due, i});
  }
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, errc::disk_full);
  EXPECT_EQ(s->size(), accepted.size());
  EXPECT_FALSE(s->checkpoint(2).ok());  // still full: the previous checkpoint stays in force

  fs.set_capacity_for_test(std::nullopt);
  ASSERT_TRUE(s->checkpoint(3).ok());  // no torn block was left behind by the failed appends
  s.reset();
  fs.crash_for_test(io::crash_mode::drop_unsynced);
  s = open_ok(fs, 3);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), accepted.size());
  std::vector<due_entry> fired = pop_all(*s, epoch_2026 + 20 * day);
  EXPECT_EQ(fired, accepted);
}

TEST(disk_scheduler, failed_checkpoint_keeps_the_previous_one) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(epoch_2026 + day, 1).ok());
    ASSERT_TRUE(s->checkpoint(7).ok());
    ASSERT_TRUE(s->insert(epoch_2026 + day, 2).ok());
    fs.fail_next_for_test(io::fs_op::rename, errc::io_error);
    EXPECT_FALSE(s->checkpoint(8).ok());
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto s = open_ok(fs, 7);
  ASSERT_TRUE(s);
  EXPECT_EQ(pop_all(*s, epoch_2026 + 2 * day), (std::vector<due_entry>{{epoch_2026 + day, 1}}));
}

TEST(disk_scheduler, corrupt_bucket_is_reported_not_fired) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(epoch_2026 + day, 1).ok());
    ASSERT_TRUE(s->checkpoint(1).ok());
  }
  auto names = fs.list_dir(dir);
  ASSERT_TRUE(names.ok());
  std::string bucket;
  for (const auto& n : *names) {
    if (n.starts_with(delay_index_format::bucket_prefix)) bucket = n;
  }
  ASSERT_FALSE(bucket.empty());
  ASSERT_TRUE(fs.corrupt_for_test(std::string(dir) + "/" + bucket,
                                  delay_index_format::block_header_size + 3, std::byte{0x40})
                  .ok());
  auto s = open_ok(fs, 1);
  ASSERT_TRUE(s);
  std::vector<due_entry> out;
  auto popped = s->pop_due(epoch_2026 + 2 * day, out, SIZE_MAX);
  ASSERT_FALSE(popped.ok());
  EXPECT_EQ(popped.error().code, errc::data_corruption);
  EXPECT_TRUE(out.empty());
}

TEST(disk_scheduler, corrupt_checkpoint_fails_open) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(epoch_2026 + day, 1).ok());
    ASSERT_TRUE(s->checkpoint(1).ok());
  }
  ASSERT_TRUE(fs.corrupt_for_test(std::string(dir) + "/CHECKPOINT", 9, std::byte{1}).ok());
  auto opened = disk_scheduler::open(fs, dir, small_options());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, errc::data_corruption);
}

TEST(disk_scheduler, fired_buckets_are_removed_at_checkpoint) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0);
  ASSERT_TRUE(s);
  EXPECT_TRUE(pop_all(*s, epoch_2026).empty());
  for (std::uint64_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(s->insert(epoch_2026 + static_cast<std::int64_t>(i) * 10 * second, i).ok());
  }
  ASSERT_TRUE(s->checkpoint(1).ok());
  EXPECT_EQ(s->bucket_count(), 50u);
  EXPECT_EQ(pop_all(*s, epoch_2026 + 250 * second - 1).size(), 25u);
  ASSERT_TRUE(s->checkpoint(2).ok());
  EXPECT_EQ(s->bucket_count(), 25u);
  auto names = fs.list_dir(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(std::count_if(names->begin(), names->end(),
                          [](const std::string& n) {
                            return n.starts_with(delay_index_format::bucket_prefix);
                          }),
            25);
}

disk_scheduler_options coarse_options() {
  disk_scheduler_options o = small_options();
  o.coarse_width_ns = 60 * minute;
  o.coarse_lead_ns = 10 * minute;
  return o;
}

std::size_t files_with_prefix(io::file_system& fs, std::string_view prefix) {
  auto names = fs.list_dir(dir);
  EXPECT_TRUE(names.ok());
  if (!names) return 0;
  return static_cast<std::size_t>(std::count_if(
      names->begin(), names->end(), [&](const std::string& n) { return n.starts_with(prefix); }));
}

TEST(disk_scheduler, coarse_tier_fires_a_seven_day_spread_in_order_from_few_files) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  // Inserted before any now is seen (as during the broker's replay), then after.
  xoshiro_random rng(5);
  std::multiset<std::pair<std::int64_t, std::uint64_t>> expected;
  constexpr std::uint64_t count = 20000;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (i == count / 2) {
      EXPECT_TRUE(pop_all(*s, epoch_2026).empty());
    }
    const auto due = epoch_2026 + static_cast<std::int64_t>(rng.uniform(7 * day / ms)) * ms;
    ASSERT_TRUE(s->insert(due, i).ok());
    expected.emplace(due, i);
  }
  EXPECT_EQ(s->size(), count);
  ASSERT_TRUE(s->flush().ok());
  // 7 days of one-hour coarse files, and fine files only for the first ~70 minutes.
  EXPECT_LE(files_with_prefix(fs, delay_index_format::coarse_prefix), 7u * 24 + 1);
  EXPECT_LE(files_with_prefix(fs, delay_index_format::bucket_prefix), 70u * 6 + 1);
  EXPECT_LT(s->loaded_entries(), count / 100);

  // Walk time forward in irregular steps, following next_due() as an owner would.
  std::vector<due_entry> fired;
  std::int64_t now = epoch_2026;
  while (now < epoch_2026 + 8 * day) {
    auto next = s->next_due();
    ASSERT_TRUE(next.has_value() || fired.size() == count);
    if (!next) break;
    EXPECT_LE(*next, expected.empty() ? *next : expected.begin()->first) << "next_due too late";
    now = std::max(now + static_cast<std::int64_t>(rng.uniform(20 * minute)), *next);
    for (const due_entry& e : pop_all(*s, now)) {
      fired.push_back(e);
      auto it = expected.find({e.due_ns, e.ref});
      ASSERT_NE(it, expected.end()) << "fired twice or never inserted";
      expected.erase(it);
    }
    EXPECT_LE(s->loaded_entries(), count / 50);  // only the near window is in memory
  }
  EXPECT_TRUE(expected.empty());
  EXPECT_EQ(fired.size(), count);
  EXPECT_EQ(s->size(), 0u);
  EXPECT_EQ(files_with_prefix(fs, delay_index_format::coarse_prefix), 0u);
}

TEST(disk_scheduler, coarse_tier_entries_near_now_fire_on_time) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  // Before any now: lands in the coarse tier; next_due() still asks for a tick in time.
  ASSERT_TRUE(s->insert(epoch_2026 + 5 * ms, 1).ok());
  ASSERT_TRUE(s->next_due().has_value());
  EXPECT_LE(*s->next_due(), epoch_2026 + 5 * ms);
  EXPECT_TRUE(pop_all(*s, epoch_2026).empty());
  ASSERT_TRUE(s->insert(epoch_2026 + 3 * ms, 2).ok());
  ASSERT_TRUE(s->insert(epoch_2026 + 2 * day, 3).ok());
  EXPECT_EQ(pop_all(*s, epoch_2026 + 4 * ms), (std::vector<due_entry>{{epoch_2026 + 3 * ms, 2}}));
  EXPECT_EQ(pop_all(*s, epoch_2026 + 5 * ms), (std::vector<due_entry>{{epoch_2026 + 5 * ms, 1}}));
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->coarse_bucket_count(), 1u);
}

TEST(disk_scheduler, coarse_tier_refuses_checkpoints_and_bad_options) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->insert(epoch_2026 + day, 1).ok());
  auto cp = s->checkpoint(1);
  ASSERT_FALSE(cp.ok());
  EXPECT_EQ(cp.error().code, errc::failed_precondition);
  disk_scheduler_options bad = coarse_options();
  bad.coarse_width_ns = 15 * second;  // not a multiple of the 10 s bucket width
  EXPECT_EQ(disk_scheduler::open(fs, dir, bad).error().code, errc::invalid_argument);
  bad = coarse_options();
  bad.coarse_lead_ns = second;  // shorter than load_ahead
  EXPECT_EQ(disk_scheduler::open(fs, dir, bad).error().code, errc::invalid_argument);
}

TEST(disk_scheduler, coarse_files_left_by_a_crash_are_removed_on_open) {
  io::mem_file_system fs;
  {
    auto s = open_ok(fs, 0, coarse_options());
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->insert(epoch_2026 + 3 * day, 1).ok());
    ASSERT_TRUE(s->flush().ok());
    EXPECT_EQ(files_with_prefix(fs, delay_index_format::coarse_prefix), 1u);
  }
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  EXPECT_EQ(files_with_prefix(fs, delay_index_format::coarse_prefix), 0u);
  EXPECT_EQ(s->size(), 0u);
}

TEST(disk_scheduler, coarse_tier_io_failure_while_flushing_adds_nothing_and_recovers) {
  io::mem_file_system fs;
  disk_scheduler_options o = coarse_options();
  o.max_buffered_entries = 4;
  auto s = open_ok(fs, 0, o);
  ASSERT_TRUE(s);
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(s->insert(epoch_2026 + 2 * day, i).ok());
  fs.fail_next_for_test(io::fs_op::append, errc::disk_full);
  auto failed = s->insert(epoch_2026 + 2 * day, 99);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(s->size(), 4u);
  ASSERT_TRUE(s->insert(epoch_2026 + 2 * day, 4).ok());
  EXPECT_EQ(pop_all(*s, epoch_2026 + 3 * day).size(), 5u);
}

}  // namespace
}  // namespace outrider::timing

namespace outrider::timing {
namespace {

TEST(disk_scheduler, for_each_entry_lists_exactly_what_is_still_held) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  ASSERT_TRUE(pop_all(*s, epoch_2026).empty());
  std::multiset<std::pair<std::int64_t, std::uint64_t>> expected;
  xoshiro_random rng(11);
  for (std::uint64_t ref = 0; ref < 3000; ++ref) {
    // Near (wheel), within the fine range, and days ahead (coarse files).
    const std::int64_t spans[] = {3 * second, 40 * minute, 6 * day};
    const std::int64_t due =
        epoch_2026 + 1 +
        static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(spans[ref % 3])));
    ASSERT_TRUE(s->insert(due, ref).ok());
    expected.emplace(due, ref);
  }
  ASSERT_TRUE(s->insert(epoch_2026 + 3 * second, 9999).ok());  // a duplicate due time
  expected.emplace(epoch_2026 + 3 * second, 9999);
  for (const due_entry& e : pop_all(*s, epoch_2026 + 2 * second)) {
    expected.erase(expected.find({e.due_ns, e.ref}));
  }
  std::multiset<std::pair<std::int64_t, std::uint64_t>> listed;
  ASSERT_TRUE(s->for_each_entry([&](const due_entry& e) {
                 listed.emplace(e.due_ns, e.ref);
                 return ok_status();
               }).ok());
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(listed.size(), s->size());
  // An error from the callback stops the walk and is returned.
  std::size_t seen = 0;
  auto stopped = s->for_each_entry([&](const due_entry&) {
    ++seen;
    return status(error(errc::cancelled, "enough"));
  });
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(seen, 1u);
}

TEST(disk_scheduler, a_snapshot_lists_what_was_held_when_taken_whatever_happens_after) {
  io::mem_file_system fs;
  auto s = open_ok(fs, 0, coarse_options());
  ASSERT_TRUE(s);
  ASSERT_TRUE(pop_all(*s, epoch_2026).empty());
  std::multiset<std::pair<std::int64_t, std::uint64_t>> expected;
  xoshiro_random rng(12);
  for (std::uint64_t ref = 0; ref < 3000; ++ref) {
    const std::int64_t spans[] = {3 * second, 40 * minute, 6 * day};
    const std::int64_t due =
        epoch_2026 + 1 +
        static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(spans[ref % 3])));
    ASSERT_TRUE(s->insert(due, ref).ok());
    expected.emplace(due, ref);
  }
  ASSERT_TRUE(s->flush().ok());
  auto snap = s->snapshot();
  ASSERT_TRUE(snap);
  // Afterwards: more entries, and most of them fire (files are read, cascaded, removed).
  for (std::uint64_t ref = 5000; ref < 5100; ++ref)
    ASSERT_TRUE(s->insert(epoch_2026 + ref, ref).ok());
  EXPECT_FALSE(pop_all(*s, epoch_2026 + 5 * day).empty());
  std::multiset<std::pair<std::int64_t, std::uint64_t>> listed;
  ASSERT_TRUE(snap->for_each([&](const due_entry& e) {
                    listed.emplace(e.due_ns, e.ref);
                    return ok_status();
                  })
                  .ok());
  EXPECT_EQ(listed, expected);
}

}  // namespace
}  // namespace outrider::timing
