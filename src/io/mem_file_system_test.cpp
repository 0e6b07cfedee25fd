// Fault injection of mem_file_system: crashes, injected errors, a full disk.
#include "io/mem_file_system.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace outrider::io {
namespace {

std::vector<std::byte> pattern(std::size_t n, std::uint8_t salt) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 31 + salt) & 0xff);
  return out;
}

std::vector<std::byte> contents(mem_file_system& fs, const std::string& path) {
  auto file = fs.open_for_read(path);
  EXPECT_TRUE(file.ok());
  if (!file.ok()) return {};
  std::vector<std::byte> buf(*(*file)->size());
  EXPECT_TRUE((*file)->read_at(0, buf).ok());
  return buf;
}

bool exists(mem_file_system& fs, const std::string& path) {
  return *fs.exists(path);
}

class mem_fs_faults : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.create_dirs("/data").ok());
    ASSERT_TRUE(fs_.sync_dir("/").ok());
  }
  mem_file_system fs_{7};
};

TEST_F(mem_fs_faults, crash_drops_unsynced_bytes_and_keeps_synced_ones) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  const auto synced = pattern(100, 1);
  ASSERT_TRUE((*file)->append(synced).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE((*file)->append(pattern(50, 2)).ok());
  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_EQ(contents(fs_, "/data/f"), synced);
}

TEST_F(mem_fs_faults, a_crash_keeps_synced_zeros_and_loses_what_overwrote_them_unsynced) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  const auto synced = pattern(10, 1);
  ASSERT_TRUE((*file)->append(synced).ok());
  ASSERT_TRUE((*file)->preallocate(64).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE((*file)->append(pattern(20, 2)).ok());  // over the zeros, not synced
  ASSERT_TRUE((*file)->preallocate(128).ok());        // not synced either
  fs_.crash_for_test(crash_mode::drop_unsynced);
  auto want = synced;
  want.resize(64);  // zeros after the synced bytes
  EXPECT_EQ(contents(fs_, "/data/f"), want);
  // Torn: a prefix of the lost append may survive, then zeros to the synced size.
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    mem_file_system fs(seed);
    ASSERT_TRUE(fs.create_dirs("/d").ok());
    ASSERT_TRUE(fs.sync_dir("/").ok());
    auto f = fs.open_for_append("/d/f");
    ASSERT_TRUE(fs.sync_dir("/d").ok());
    ASSERT_TRUE((*f)->append(synced).ok());
    ASSERT_TRUE((*f)->preallocate(64).ok());
    ASSERT_TRUE((*f)->sync().ok());
    ASSERT_TRUE((*f)->append(pattern(20, 2)).ok());
    fs.crash_for_test(crash_mode::tear_tail);
    const auto got = contents(fs, "/d/f");
    ASSERT_EQ(got.size(), 64u);
    EXPECT_TRUE(std::equal(synced.begin(), synced.end(), got.begin()));
    EXPECT_TRUE(
        std::all_of(got.begin() + 30, got.end(), [](std::byte b) { return b == std::byte{0}; }));
  }
}

TEST_F(mem_fs_faults, tear_keeps_an_intact_synced_prefix_and_part_of_the_rest) {
  const auto synced = pattern(64, 3);
  const auto unsynced = pattern(256, 4);
  bool saw_partial = false;
  bool saw_garbled = false;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    mem_file_system fs(seed);
    ASSERT_TRUE(fs.create_dirs("/d").ok());
    ASSERT_TRUE(fs.sync_dir("/").ok());
    auto file = fs.open_for_append("/d/f");
    ASSERT_TRUE(fs.sync_dir("/d").ok());
    ASSERT_TRUE((*file)->append(synced).ok());
    ASSERT_TRUE((*file)->sync().ok());
    ASSERT_TRUE((*file)->append(unsynced).ok());
    fs.crash_for_test(crash_mode::tear_tail);
    const auto after = contents(fs, "/d/f");
    ASSERT_GE(after.size(), synced.size());
    ASSERT_LE(after.size(), synced.size() + unsynced.size());
    ASSERT_TRUE(std::equal(synced.begin(), synced.end(), after.begin())) << "seed " << seed;
    const std::size_t kept = after.size() - synced.size();
    if (kept > 0 && kept < unsynced.size()) saw_partial = true;
    // Only the last few kept bytes may differ from what was written.
    std::size_t first_diff = kept;
    for (std::size_t i = 0; i < kept; ++i) {
      if (after[synced.size() + i] != unsynced[i]) {
        first_diff = i;
        break;
      }
    }
    if (first_diff < kept) {
      saw_garbled = true;
      EXPECT_LE(kept - first_diff, 8u) << "seed " << seed;
    }
    // After the reboot everything present is durable.
    auto size = fs.synced_size_for_test("/d/f");
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, after.size());
  }
  EXPECT_TRUE(saw_partial);
  EXPECT_TRUE(saw_garbled);
}

TEST_F(mem_fs_faults, unsynced_directory_operations_are_undone) {
  auto kept = fs_.open_for_append("/data/kept");
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE((*kept)->append(pattern(10, 5)).ok());
  ASSERT_TRUE((*kept)->sync().ok());
  ASSERT_TRUE(fs_.sync_dir("/data").ok());

  auto fresh = fs_.open_for_append("/data/fresh");  // created, never sync_dir'ed
  ASSERT_TRUE((*fresh)->append(pattern(10, 6)).ok());
  ASSERT_TRUE((*fresh)->sync().ok());
  ASSERT_TRUE(fs_.rename("/data/kept", "/data/renamed").ok());
  ASSERT_TRUE(fs_.create_dirs("/data/sub/deeper").ok());

  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_TRUE(exists(fs_, "/data/kept"));
  EXPECT_FALSE(exists(fs_, "/data/renamed"));
  EXPECT_FALSE(exists(fs_, "/data/fresh"));
  EXPECT_FALSE(exists(fs_, "/data/sub"));
  EXPECT_EQ(contents(fs_, "/data/kept"), pattern(10, 5));

  // A removal is undone too unless the directory is synced.
  ASSERT_TRUE(fs_.remove_file("/data/kept").ok());
  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_TRUE(exists(fs_, "/data/kept"));
  ASSERT_TRUE(fs_.remove_file("/data/kept").ok());
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_FALSE(exists(fs_, "/data/kept"));
}

TEST_F(mem_fs_faults, files_under_a_directory_that_was_never_made_durable_vanish) {
  ASSERT_TRUE(fs_.create_dirs("/data/new").ok());
  auto file = fs_.open_for_append("/data/new/f");
  ASSERT_TRUE((*file)->append(pattern(4, 1)).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE(fs_.sync_dir("/data/new").ok());  // the file's entry, but not the directory's
  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_FALSE(exists(fs_, "/data/new"));
  EXPECT_FALSE(exists(fs_, "/data/new/f"));
}

TEST_F(mem_fs_faults, a_crash_after_an_unsynced_truncate_restores_the_durable_bytes) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  ASSERT_TRUE((*file)->append(pattern(40, 9)).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE((*file)->truncate(10).ok());
  fs_.crash_for_test(crash_mode::drop_unsynced);
  EXPECT_EQ(contents(fs_, "/data/f"), pattern(40, 9));

  auto again = fs_.open_for_append("/data/f");
  ASSERT_TRUE((*again)->truncate(10).ok());
  ASSERT_TRUE((*again)->sync().ok());
  fs_.crash_for_test(crash_mode::tear_tail);
  EXPECT_EQ(contents(fs_, "/data/f").size(), 10u);
}

TEST_F(mem_fs_faults, file_objects_opened_before_a_crash_fail_afterwards) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  auto reader = fs_.open_for_read("/data/f");
  fs_.crash_for_test(crash_mode::drop_unsynced);
  auto st = (*file)->append(pattern(3, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, errc::io_error);
  std::vector<std::byte> buf(1);
  EXPECT_FALSE((*reader)->read_at(0, buf).ok());
  EXPECT_FALSE((*file)->sync().ok());
}

TEST_F(mem_fs_faults, injected_failures_fire_once_and_have_no_effect) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(file.ok());

  fs_.fail_next_for_test(fs_op::append, errc::io_error);
  auto st = (*file)->append(pattern(5, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, errc::io_error);
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_TRUE((*file)->append(pattern(5, 1)).ok());

  fs_.fail_next_for_test(fs_op::sync, errc::io_error);
  st = (*file)->sync();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(*fs_.synced_size_for_test("/data/f"), 0u);
  EXPECT_TRUE((*file)->sync().ok());
  EXPECT_EQ(*fs_.synced_size_for_test("/data/f"), 5u);

  fs_.fail_next_for_test(fs_op::open, errc::disk_full);
  auto opened = fs_.open_for_append("/data/g");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, errc::disk_full);
  EXPECT_FALSE(exists(fs_, "/data/g"));

  fs_.fail_next_for_test(fs_op::sync_dir, errc::io_error);
  EXPECT_FALSE(fs_.sync_dir("/data").ok());
  fs_.fail_next_for_test(fs_op::rename, errc::io_error);
  EXPECT_FALSE(fs_.rename("/data/f", "/data/h").ok());
  EXPECT_TRUE(exists(fs_, "/data/f"));
  fs_.fail_next_for_test(fs_op::remove, errc::io_error);
  EXPECT_FALSE(fs_.remove_file("/data/f").ok());
  EXPECT_TRUE(exists(fs_, "/data/f"));
  fs_.fail_next_for_test(fs_op::truncate, errc::io_error);
  EXPECT_FALSE((*file)->truncate(0).ok());
  EXPECT_EQ((*file)->size(), 5u);
}

TEST_F(mem_fs_faults, appends_beyond_capacity_fail_with_disk_full_and_write_nothing) {
  fs_.set_capacity_for_test(100);
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE((*file)->append(pattern(60, 1)).ok());
  auto free = fs_.free_space("/data");
  ASSERT_TRUE(free.ok());
  EXPECT_EQ(*free, 40u);
  auto st = (*file)->append(pattern(41, 2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, errc::disk_full);
  EXPECT_EQ((*file)->size(), 60u);
  EXPECT_TRUE((*file)->append(pattern(40, 3)).ok());
  fs_.set_capacity_for_test(std::nullopt);
  EXPECT_TRUE((*file)->append(pattern(1000, 4)).ok());
  EXPECT_EQ(fs_.used_bytes(), 1100u);
}

TEST_F(mem_fs_faults, corrupt_flips_bits_in_durable_data) {
  auto file = fs_.open_for_append("/data/f");
  ASSERT_TRUE(fs_.sync_dir("/data").ok());
  ASSERT_TRUE((*file)->append(pattern(8, 0)).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE(fs_.corrupt_for_test("/data/f", 3, std::byte{0x10}).ok());
  fs_.crash_for_test(crash_mode::drop_unsynced);
  auto expected = pattern(8, 0);
  expected[3] ^= std::byte{0x10};
  EXPECT_EQ(contents(fs_, "/data/f"), expected);
  EXPECT_FALSE(fs_.corrupt_for_test("/data/f", 8, std::byte{1}).ok());
}

TEST_F(mem_fs_faults, relative_and_root_paths) {
  ASSERT_TRUE(fs_.create_dirs("rel/dir").ok());
  auto file = fs_.open_for_append("./rel/dir//f");
  ASSERT_TRUE(file.ok());
  auto names = fs_.list_dir("rel/dir/");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f"});
  auto root = fs_.list_dir("/");
  ASSERT_TRUE(root.ok());
  EXPECT_NE(std::find(root->begin(), root->end(), "data"), root->end());
}

}  // namespace
}  // namespace outrider::io
