// The durable log under faults: power loss (mem_file_system crashes in both
// modes, many seeds), bit rot, missing segments, a full disk, failing syncs.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include "io/mem_file_system.h"
#include "storage/log.h"
#include "storage/log_format.h"
#include "storage/log_test_util.h"

namespace outrider::storage {
namespace {

using test::appended;
using test::expect_records;
using test::payload_for;
using test::read_all;
using test::type_for;

constexpr const char* dir = "/data/log";

log_options small_segments() {
  log_options o;
  o.segment_bytes = 2048;
  o.write_buffer_bytes = 300;
  return o;
}

std::string segment_file(std::uint64_t number) {
  return fmt::format("{}/{:020}.log", dir, number);
}

std::vector<appended> append_n(log& lg, std::uint64_t first, std::uint64_t count) {
  std::vector<appended> out;
  for (std::uint64_t i = first; i < first + count; ++i) {
    auto pos = lg.append(type_for(i), payload_for(i));
    EXPECT_TRUE(pos.ok()) << pos.error().message;
    if (!pos.ok()) break;
    out.push_back({*pos, i});
  }
  return out;
}

// After a crash: every synced record is there, intact, and what follows is a
// prefix of what was appended after it (no gap, no garbage), ending at a record boundary.
void check_after_crash(const log& lg, const std::vector<appended>& synced,
                       const std::vector<appended>& unsynced) {
  const auto got = read_all(lg);
  ASSERT_GE(got.size(), synced.size());
  ASSERT_LE(got.size(), synced.size() + unsynced.size());
  std::vector<appended> want = synced;
  want.insert(want.end(), unsynced.begin(),
              unsynced.begin() + static_cast<std::ptrdiff_t>(got.size() - synced.size()));
  expect_records(got, want);
  const position expected_end = got.empty() ? lg.begin() : got.back().next;
  if (lg.end() != expected_end) {
    // The log may end with an empty segment after the last record.
    EXPECT_EQ(lg.end() & log_format::offset_mask, log_format::segment_header_size);
    EXPECT_GT(lg.end(), expected_end);
  }
  EXPECT_EQ(lg.durable_end(), lg.end());
}

class log_crash : public ::testing::TestWithParam<io::crash_mode> {};

TEST_P(log_crash, synced_records_survive_and_the_log_ends_at_a_record_boundary) {
  constexpr std::uint64_t seeds = 1000;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE(fmt::format("seed {}", seed));
    io::mem_file_system fs(seed);
    const std::uint64_t synced_count = 1 + seed % 40;
    const std::uint64_t unsynced_count = 1 + (seed * 7) % 30;
    std::vector<appended> synced;
    std::vector<appended> unsynced;
    {
      auto lg = log::open(fs, dir, small_segments());
      ASSERT_TRUE(lg.ok()) << lg.error().message;
      synced = append_n(**lg, 0, synced_count);
      ASSERT_TRUE((*lg)->sync().ok());
      // Half the seeds with the next segment written ahead (zeros; the appends below
      // roll into it early, and a crash finds zeros after the records).
      if (seed % 2 == 0) {
        ASSERT_TRUE((*lg)->prepare_next_segment().ok());
      }
      unsynced = append_n(**lg, synced_count, unsynced_count);
      fs.crash_for_test(GetParam());
    }
    std::vector<appended> kept;
    {
      auto lg = log::open(fs, dir, small_segments());
      ASSERT_TRUE(lg.ok()) << lg.error().message;
      check_after_crash(**lg, synced, unsynced);
      if (::testing::Test::HasFatalFailure()) return;
      // The recovered log takes appends and survives another crash.
      kept = synced;
      const auto after = read_all(**lg);
      for (std::size_t i = synced.size(); i < after.size(); ++i) {
        kept.push_back(unsynced[i - synced.size()]);
      }
      const auto more = append_n(**lg, 1000, 5);
      kept.insert(kept.end(), more.begin(), more.end());
      ASSERT_TRUE((*lg)->sync().ok());
      fs.crash_for_test(GetParam());
    }
    auto lg = log::open(fs, dir, small_segments());
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    expect_records(read_all(**lg), kept);
  }
}

INSTANTIATE_TEST_SUITE_P(modes, log_crash,
                         ::testing::Values(io::crash_mode::drop_unsynced,
                                           io::crash_mode::tear_tail),
                         [](const ::testing::TestParamInfo<io::crash_mode>& param) {
                           return param.param == io::crash_mode::drop_unsynced
                                      ? std::string("drop_unsynced")
                                      : std::string("tear_tail");
                         });

TEST(log_faults, a_crash_before_the_first_sync_leaves_a_usable_empty_log) {
  io::mem_file_system fs;
  {
    auto lg = log::open(fs, dir);
    ASSERT_TRUE(lg.ok());
    append_n(**lg, 0, 10);
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto lg = log::open(fs, dir);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_TRUE(read_all(**lg).empty());
}

// Byte offset in its segment file of the payload of record `a`.
std::uint64_t payload_offset(const appended& a) {
  return (a.pos & log_format::offset_mask) + log_format::record_header_size;
}

TEST(log_faults, corruption_before_the_tail_is_data_corruption_and_repair_truncates_there) {
  io::mem_file_system fs;
  std::vector<appended> written;
  {
    auto lg = log::open(fs, dir);
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 1, 10);  // index 0 has an empty payload
    ASSERT_TRUE((*lg)->sync().ok());
  }
  ASSERT_TRUE(fs.corrupt_for_test(segment_file(1), payload_offset(written[3]), std::byte{4}).ok());
  auto failed = log::open(fs, dir);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, errc::data_corruption);
  EXPECT_NE(failed.error().message.find("repair"), std::string::npos);

  log_options repair;
  repair.repair = true;
  {
    auto lg = log::open(fs, dir, repair);
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    expect_records(read_all(**lg), {written.begin(), written.begin() + 3});
    EXPECT_EQ((*lg)->end(), written[3].pos);
    const auto more = append_n(**lg, 100, 2);
    ASSERT_TRUE((*lg)->sync().ok());
  }
  auto lg = log::open(fs, dir);  // healthy again
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ(read_all(**lg).size(), 5u);
}

TEST(log_faults, a_bit_flip_in_a_length_field_is_not_mistaken_for_a_torn_tail) {
  io::mem_file_system fs;
  std::vector<appended> written;
  {
    auto lg = log::open(fs, dir);
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 1, 10);
    ASSERT_TRUE((*lg)->sync().ok());
  }
  // The length now runs past the end of the file, as a torn record's would.
  const std::uint64_t length_high_byte =
      (written[4].pos & log_format::offset_mask) + log_format::record_length_offset + 3;
  ASSERT_TRUE(fs.corrupt_for_test(segment_file(1), length_high_byte, std::byte{0x40}).ok());
  auto failed = log::open(fs, dir);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, errc::data_corruption);
}

TEST(log_faults, a_bad_record_in_an_older_segment) {
  io::mem_file_system fs;
  std::vector<appended> written;
  {
    auto lg = log::open(fs, dir, small_segments());
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 1, 100);
    ASSERT_TRUE((*lg)->sync().ok());
    ASSERT_GT((*lg)->segment_count(), 3u);
  }
  const appended victim = written[2];  // in segment 1
  ASSERT_EQ(victim.pos >> log_format::offset_bits, 1u);
  ASSERT_TRUE(fs.corrupt_for_test(segment_file(1), payload_offset(victim), std::byte{1}).ok());

  {  // The default open checks only the last segment; the read finds the damage.
    auto lg = log::open(fs, dir, small_segments());
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    auto rec = (*lg)->read(victim.pos);
    ASSERT_FALSE(rec.ok());
    EXPECT_EQ(rec.error().code, errc::data_corruption);
    auto rd = (*lg)->read_from((*lg)->begin());
    ASSERT_TRUE(rd.ok());
    EXPECT_TRUE(rd->next().ok());
    EXPECT_TRUE(rd->next().ok());
    auto bad = rd->next();
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, errc::data_corruption);
  }
  log_options verify = small_segments();
  verify.verify_all_segments = true;
  auto failed = log::open(fs, dir, verify);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, errc::data_corruption);

  verify.repair = true;
  auto lg = log::open(fs, dir, verify);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ((*lg)->segment_count(), 1u);
  expect_records(read_all(**lg), {written.begin(), written.begin() + 2});
  ASSERT_TRUE((*lg)->append(1, payload_for(1)).ok());
  ASSERT_TRUE((*lg)->sync().ok());
}

TEST(log_faults, a_bad_segment_header_or_a_missing_segment_is_data_corruption) {
  io::mem_file_system fs;
  {
    auto lg = log::open(fs, dir, small_segments());
    ASSERT_TRUE(lg.ok());
    append_n(**lg, 0, 100);
    ASSERT_TRUE((*lg)->sync().ok());
  }
  ASSERT_TRUE(fs.corrupt_for_test(segment_file(3), 9, std::byte{0x80}).ok());
  auto failed = log::open(fs, dir, small_segments());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, errc::data_corruption);
  ASSERT_TRUE(fs.corrupt_for_test(segment_file(3), 9, std::byte{0x80}).ok());  // undo

  ASSERT_TRUE(fs.remove_file(segment_file(2)).ok());
  failed = log::open(fs, dir, small_segments());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, errc::data_corruption);
  EXPECT_NE(failed.error().message.find("segment 2 is missing"), std::string::npos);

  log_options repair = small_segments();
  repair.repair = true;
  auto lg = log::open(fs, dir, repair);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ((*lg)->segment_count(), 1u);  // segment 1 only: nothing after a gap
  EXPECT_FALSE(read_all(**lg).empty());
  ASSERT_TRUE((*lg)->append(0, payload_for(0)).ok());
}

TEST(log_faults, torn_tails_of_garbage_or_zeros_are_truncated) {
  for (const std::byte fill : {std::byte{0}, std::byte{0x01}, std::byte{0xff}}) {
    io::mem_file_system fs;
    std::vector<appended> written;
    {
      auto lg = log::open(fs, dir);
      ASSERT_TRUE(lg.ok());
      written = append_n(**lg, 0, 20);
      ASSERT_TRUE((*lg)->sync().ok());
    }
    for (std::size_t extra : {std::size_t{3}, std::size_t{10}, std::size_t{500}}) {
      auto file = fs.open_for_append(segment_file(1));
      ASSERT_TRUE(file.ok());
      ASSERT_TRUE((*file)->append(std::vector<std::byte>(extra, fill)).ok());
      ASSERT_TRUE((*file)->sync().ok());
      auto lg = log::open(fs, dir);
      ASSERT_TRUE(lg.ok()) << lg.error().message;
      expect_records(read_all(**lg), written);
      EXPECT_EQ((*lg)->end(), read_all(**lg).back().next);
    }
  }
}

// Zeros after the last record of the last segment are the rest of a segment written
// ahead (log_options::prepare_segments); a roll cuts them off, so in an older segment
// they are damage like any other.
TEST(log_faults, zeros_after_the_records_of_an_older_segment_are_damage) {
  io::mem_file_system fs;
  auto opts = small_segments();
  opts.verify_all_segments = true;
  {
    auto lg = log::open(fs, dir, opts);
    ASSERT_TRUE(lg.ok());
    for (std::uint64_t i = 0; i < 40; ++i) {
      append_n(**lg, i, 1);
      ASSERT_TRUE((*lg)->sync().ok());
      ASSERT_TRUE((*lg)->prepare_next_segment().ok());
    }
    ASSERT_GE((*lg)->segment_count(), 2u);
  }
  {
    auto lg = log::open(fs, dir, opts);
    ASSERT_TRUE(lg.ok()) << lg.error().message;  // the last segment's zeros are fine
  }
  auto file = fs.open_for_append(segment_file(1));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(std::vector<std::byte>(100, std::byte{0})).ok());
  ASSERT_TRUE((*file)->sync().ok());
  auto lg = log::open(fs, dir, opts);
  ASSERT_FALSE(lg.ok());
  EXPECT_EQ(lg.error().code, errc::data_corruption);
}

TEST(log_faults, an_unfinished_segment_creation_is_cleaned_up) {
  io::mem_file_system fs;
  std::vector<appended> written;
  {
    auto lg = log::open(fs, dir);
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 0, 5);
    ASSERT_TRUE((*lg)->sync().ok());
  }
  auto temp = fs.open_for_append(segment_file(2) + ".tmp");
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE((*temp)->append(std::vector<std::byte>(7, std::byte{0x4f})).ok());
  auto lg = log::open(fs, dir);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_FALSE(*fs.exists(segment_file(2) + ".tmp"));
  expect_records(read_all(**lg), written);
}

TEST(log_faults, disk_full_fails_appends_and_the_log_recovers_when_space_returns) {
  io::mem_file_system fs;
  log_options o;
  o.segment_bytes = 64 * 1024;
  o.write_buffer_bytes = 256;
  auto opened = log::open(fs, dir, o);
  ASSERT_TRUE(opened.ok());
  log& lg = **opened;
  fs.set_capacity_for_test(fs.used_bytes() + 4000);

  std::vector<appended> accepted;
  error failure;
  std::uint64_t i = 0;
  for (; i < 1000; ++i) {
    const position end_before = lg.end();
    auto pos = lg.append(type_for(i), payload_for(i));
    if (!pos.ok()) {
      failure = pos.error();
      EXPECT_EQ(lg.end(), end_before);  // nothing appended
      break;
    }
    accepted.push_back({*pos, i});
  }
  ASSERT_EQ(failure.code, errc::disk_full) << failure.message;
  auto synced = lg.sync();
  ASSERT_FALSE(synced.ok());
  EXPECT_EQ(synced.error().code, errc::disk_full);
  expect_records(read_all(lg), accepted);  // buffered records are still readable

  fs.set_capacity_for_test(std::nullopt);
  auto pos = lg.append(type_for(i), payload_for(i));
  ASSERT_TRUE(pos.ok()) << pos.error().message;
  accepted.push_back({*pos, i});
  ASSERT_TRUE(lg.sync().ok());
  expect_records(read_all(lg), accepted);

  fs.crash_for_test(io::crash_mode::drop_unsynced);
  opened->reset();
  auto reopened = log::open(fs, dir, o);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  expect_records(read_all(**reopened), accepted);
}

TEST(log_faults, a_failed_segment_roll_leaves_the_log_usable) {
  io::mem_file_system fs;
  const log_options o = small_segments();
  auto opened = log::open(fs, dir, o);
  ASSERT_TRUE(opened.ok());
  std::vector<appended> accepted;
  std::uint64_t i = 0;
  // Fill the first segment up to the record that will need a new one.
  while ((*opened)->bytes_on_disk() + log_format::record_header_size + payload_for(i).size() <=
         o.segment_bytes) {
    auto pos = (*opened)->append(type_for(i), payload_for(i));
    ASSERT_TRUE(pos.ok());
    accepted.push_back({*pos, i++});
  }
  // sync first: that one seals the full segment (sticky); the others hit the creation.
  for (const io::fs_op op :
       {io::fs_op::sync, io::fs_op::open, io::fs_op::rename, io::fs_op::sync_dir}) {
    fs.fail_next_for_test(op, errc::io_error);
    auto pos = (*opened)->append(type_for(i), payload_for(i));
    ASSERT_FALSE(pos.ok());
    EXPECT_EQ(pos.error().code, errc::io_error);
    if (op == io::fs_op::sync) {
      // The sync that failed was the one sealing the full segment: sticky, reopen.
      EXPECT_FALSE((*opened)->sync().ok());
      opened->reset();
      fs.crash_for_test(io::crash_mode::drop_unsynced);
      opened = log::open(fs, dir, o);
      ASSERT_TRUE(opened.ok()) << opened.error().message;
      accepted.resize(read_all(**opened).size());
      expect_records(read_all(**opened), accepted);
      while ((*opened)->bytes_on_disk() + log_format::record_header_size + payload_for(i).size() <=
             o.segment_bytes) {
        auto again = (*opened)->append(type_for(i), payload_for(i));
        ASSERT_TRUE(again.ok());
        accepted.push_back({*again, i++});
      }
    }
    EXPECT_EQ((**opened).segment_count(), 1u);
  }
  auto pos = (*opened)->append(type_for(i), payload_for(i));
  ASSERT_TRUE(pos.ok()) << pos.error().message;
  accepted.push_back({*pos, i});
  EXPECT_EQ((*opened)->segment_count(), 2u);
  ASSERT_TRUE((*opened)->sync().ok());
  expect_records(read_all(**opened), accepted);
}

TEST(log_faults, a_failed_fdatasync_stops_the_log_until_reopened) {
  io::mem_file_system fs;
  std::vector<appended> synced;
  {
    auto lg = log::open(fs, dir);
    ASSERT_TRUE(lg.ok());
    synced = append_n(**lg, 0, 10);
    ASSERT_TRUE((*lg)->sync().ok());
    append_n(**lg, 10, 5);
    fs.fail_next_for_test(io::fs_op::sync, errc::io_error);
    auto failed = (*lg)->sync();
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, errc::io_error);
    auto after = (*lg)->append(0, payload_for(0));
    ASSERT_FALSE(after.ok());
    EXPECT_EQ(after.error().code, errc::io_error);
    EXPECT_FALSE((*lg)->sync().ok());
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto lg = log::open(fs, dir);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  expect_records(read_all(**lg), synced);
}

TEST(log_faults, a_new_log_directory_survives_a_crash) {
  io::mem_file_system fs;
  std::vector<appended> written;
  {
    auto lg = log::open(fs, "/fresh/a/b");
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 0, 3);
    ASSERT_TRUE((*lg)->sync().ok());
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto lg = log::open(fs, "/fresh/a/b");
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  expect_records(read_all(**lg), written);
}

}  // namespace
}  // namespace outrider::storage
