// One conformance suite for every file_system: the real disk (in a temporary
// directory) and mem_file_system. Fault injection tests for the latter are in
// mem_file_system_test.cpp.
#include "io/file_system.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <thread>

#include "io/mem_file_system.h"

namespace outrider::io {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::transform(s.begin(), s.end(), out.begin(), [](char c) { return static_cast<std::byte>(c); });
  return out;
}

std::string string_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

struct fs_fixture {
  virtual ~fs_fixture() = default;
  virtual file_system& fs() = 0;
  virtual std::string root() = 0;
};

struct posix_fixture final : fs_fixture {
  posix_fixture() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "outrider-fs-XXXXXX").string();
    const char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    dir = tmpl;
  }
  ~posix_fixture() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  file_system& fs() override { return posix_file_system(); }
  std::string root() override { return dir; }
  std::string dir;
};

struct mem_fixture final : fs_fixture {
  mem_fixture() { EXPECT_TRUE(mem.create_dirs("/tmp/mem").ok()); }
  file_system& fs() override { return mem; }
  std::string root() override { return "/tmp/mem"; }
  mem_file_system mem;
};

using fixture_factory = std::function<std::unique_ptr<fs_fixture>()>;

class file_system_conformance : public ::testing::TestWithParam<fixture_factory> {
 protected:
  void SetUp() override { fixture_ = GetParam()(); }
  file_system& fs() { return fixture_->fs(); }
  std::string path(std::string_view name) { return fixture_->root() + "/" + std::string(name); }

  std::string read_all(const std::string& p) {
    auto file = fs().open_for_read(p);
    EXPECT_TRUE(file.ok());
    if (!file.ok()) return {};
    auto size = (*file)->size();
    EXPECT_TRUE(size.ok());
    std::vector<std::byte> buf(*size);
    auto n = (*file)->read_at(0, buf);
    EXPECT_TRUE(n.ok());
    EXPECT_EQ(*n, buf.size());
    return string_of(buf);
  }

  std::unique_ptr<fs_fixture> fixture_;
};

TEST_P(file_system_conformance, append_sync_and_read_back) {
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ((*file)->size(), 0u);
  ASSERT_TRUE((*file)->append(bytes_of("hello ")).ok());
  ASSERT_TRUE((*file)->append(bytes_of("world")).ok());
  EXPECT_EQ((*file)->size(), 11u);
  ASSERT_TRUE((*file)->sync().ok());
  EXPECT_EQ(read_all(path("a")), "hello world");
  auto size = fs().file_size(path("a"));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11u);
  EXPECT_TRUE((*file)->close().ok());
}

TEST_P(file_system_conformance, reopen_appends_at_the_end) {
  {
    auto file = fs().open_for_append(path("a"));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->append(bytes_of("abc")).ok());
    ASSERT_TRUE((*file)->close().ok());
  }
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->size(), 3u);
  ASSERT_TRUE((*file)->append(bytes_of("def")).ok());
  EXPECT_EQ(read_all(path("a")), "abcdef");
}

TEST_P(file_system_conformance, positional_reads_are_short_at_end_of_file) {
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(bytes_of("0123456789")).ok());
  auto reader = fs().open_for_read(path("a"));
  ASSERT_TRUE(reader.ok());
  std::vector<std::byte> buf(4);
  auto n = (*reader)->read_at(3, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(string_of(buf), "3456");
  n = (*reader)->read_at(8, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  n = (*reader)->read_at(100, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  // A reader sees later appends.
  ASSERT_TRUE((*file)->append(bytes_of("ab")).ok());
  auto size = (*reader)->size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 12u);
}

TEST_P(file_system_conformance, truncate_then_append_continues_at_the_cut) {
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(bytes_of("0123456789")).ok());
  ASSERT_TRUE((*file)->truncate(4).ok());
  EXPECT_EQ((*file)->size(), 4u);
  ASSERT_TRUE((*file)->append(bytes_of("xy")).ok());
  ASSERT_TRUE((*file)->sync().ok());
  EXPECT_EQ(read_all(path("a")), "0123xy");
}

TEST_P(file_system_conformance, appends_overwrite_preallocated_zeros) {
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(bytes_of("abc")).ok());
  ASSERT_TRUE((*file)->preallocate(100).ok());
  EXPECT_EQ((*file)->size(), 3u);  // the append position does not move
  ASSERT_TRUE((*file)->append(bytes_of("def")).ok());
  ASSERT_TRUE((*file)->preallocate(50).ok());  // already holds that much: nothing happens
  ASSERT_TRUE((*file)->sync().ok());
  EXPECT_EQ((*file)->size(), 6u);
  EXPECT_EQ(*fs().file_size(path("a")), 100u);
  EXPECT_EQ(read_all(path("a")), "abcdef" + std::string(94, '\0'));
  // Appends past the zeros grow the file as usual.
  ASSERT_TRUE((*file)->append(bytes_of(std::string(120, 'x'))).ok());
  EXPECT_EQ((*file)->size(), 126u);
  EXPECT_EQ(*fs().file_size(path("a")), 126u);
  // A truncate cuts the zeros too; a new writer starts after whatever the file holds.
  ASSERT_TRUE((*file)->preallocate(200).ok());
  ASSERT_TRUE((*file)->truncate(6).ok());
  EXPECT_EQ(*fs().file_size(path("a")), 6u);
  ASSERT_TRUE((*file)->preallocate(10).ok());
  ASSERT_TRUE((*file)->sync().ok());
  ASSERT_TRUE((*file)->close().ok());
  auto again = fs().open_for_append(path("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->size(), 10u);
  ASSERT_TRUE((*again)->append(bytes_of("z")).ok());
  EXPECT_EQ(read_all(path("a")), "abcdef" + std::string(4, '\0') + "z");
}

TEST_P(file_system_conformance, missing_paths_are_not_found) {
  auto reader = fs().open_for_read(path("missing"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, errc::not_found);
  EXPECT_NE(reader.error().message.find("missing"), std::string::npos);
  auto size = fs().file_size(path("missing"));
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error().code, errc::not_found);
  auto removed = fs().remove_file(path("missing"));
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code, errc::not_found);
  auto in_missing_dir = fs().open_for_append(path("no/such/dir/file"));
  ASSERT_FALSE(in_missing_dir.ok());
  EXPECT_EQ(in_missing_dir.error().code, errc::not_found);
  auto listed = fs().list_dir(path("nodir"));
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code, errc::not_found);
  auto there = fs().exists(path("missing"));
  ASSERT_TRUE(there.ok());
  EXPECT_FALSE(*there);
}

TEST_P(file_system_conformance, directories_list_remove_and_rename) {
  ASSERT_TRUE(fs().create_dirs(path("d/e/f")).ok());
  ASSERT_TRUE(fs().create_dirs(path("d/e/f")).ok());  // idempotent
  auto there = fs().exists(path("d/e/f"));
  ASSERT_TRUE(there.ok());
  EXPECT_TRUE(*there);
  for (const char* name : {"d/x", "d/y"}) {
    auto file = fs().open_for_append(path(name));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->append(bytes_of(name)).ok());
  }
  auto names = fs().list_dir(path("d"));
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"e", "x", "y"}));

  // rename replaces the target atomically.
  ASSERT_TRUE(fs().rename(path("d/x"), path("d/y")).ok());
  EXPECT_EQ(read_all(path("d/y")), "d/x");
  names = fs().list_dir(path("d"));
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"e", "y"}));

  ASSERT_TRUE(fs().remove_file(path("d/y")).ok());
  there = fs().exists(path("d/y"));
  ASSERT_TRUE(there.ok());
  EXPECT_FALSE(*there);
  EXPECT_TRUE(fs().sync_dir(path("d")).ok());
}

TEST_P(file_system_conformance, create_dirs_over_a_file_fails) {
  auto file = fs().open_for_append(path("plain"));
  ASSERT_TRUE(file.ok());
  auto st = fs().create_dirs(path("plain/sub"));
  EXPECT_FALSE(st.ok());
}

TEST_P(file_system_conformance, free_space_is_positive) {
  auto free = fs().free_space(fixture_->root());
  ASSERT_TRUE(free.ok());
  EXPECT_GT(*free, 0u);
}

TEST_P(file_system_conformance, a_removed_file_stays_readable_through_an_open_reader) {
  auto file = fs().open_for_append(path("a"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(bytes_of("still here")).ok());
  auto reader = fs().open_for_read(path("a"));
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(fs().remove_file(path("a")).ok());
  std::vector<std::byte> buf(10);
  auto n = (*reader)->read_at(0, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(string_of(buf), "still here");
}

TEST_P(file_system_conformance, concurrent_readers_and_a_writer_on_different_files) {
  constexpr int files = 4;
  constexpr int appends = 200;
  std::vector<std::thread> threads;
  for (int i = 0; i < files; ++i) {
    threads.emplace_back([this, i] {
      auto file = fs().open_for_append(path("t" + std::to_string(i)));
      ASSERT_TRUE(file.ok());
      for (int k = 0; k < appends; ++k) ASSERT_TRUE((*file)->append(bytes_of("xy")).ok());
      ASSERT_TRUE((*file)->sync().ok());
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < files; ++i) {
    auto size = fs().file_size(path("t" + std::to_string(i)));
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, 2u * appends);
  }
}

INSTANTIATE_TEST_SUITE_P(
    implementations, file_system_conformance,
    ::testing::Values(fixture_factory([] { return std::make_unique<posix_fixture>(); }),
                      fixture_factory([] { return std::make_unique<mem_fixture>(); })),
    [](const ::testing::TestParamInfo<fixture_factory>& param) {
      return param.index == 0 ? std::string("posix") : std::string("mem");
    });

}  // namespace
}  // namespace outrider::io
