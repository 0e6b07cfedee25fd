// The durable log on a healthy filesystem: round trips, reads, reopen,
// reclamation, concurrency, bad inputs. Faults and crashes: log_crash_test.cpp.
#include "storage/log.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

#include "io/forwarding_file_system.h"
#include "io/mem_file_system.h"
#include "storage/log_format.h"
#include "storage/log_test_util.h"

namespace outrider::storage {
namespace {

using test::appended;
using test::expect_records;
using test::payload_for;
using test::read_all;
using test::type_for;

constexpr const char* dir = "/var/outrider/log";

std::string segment_file(std::uint64_t number) {
  return fmt::format("{}/{:020}.log", dir, number);
}

log_options small_segments() {
  log_options o;
  o.segment_bytes = 4096;
  o.write_buffer_bytes = 512;
  return o;
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

TEST(log, a_new_log_is_empty) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ((*lg)->begin(), (*lg)->end());
  EXPECT_EQ((*lg)->durable_end(), (*lg)->end());
  EXPECT_EQ((*lg)->segment_count(), 1u);
  EXPECT_EQ((*lg)->bytes_on_disk(), log_format::segment_header_size);
  EXPECT_TRUE(read_all(**lg).empty());
  auto names = fs.list_dir(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"00000000000000000001.log"});
}

TEST(log, round_trip_across_segment_rolls_before_and_after_sync) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir, small_segments());
  ASSERT_TRUE(lg.ok());
  const auto written = append_n(**lg, 0, 500);
  EXPECT_GT((*lg)->segment_count(), 10u);
  for (std::size_t i = 1; i < written.size(); ++i) ASSERT_LT(written[i - 1].pos, written[i].pos);
  expect_records(read_all(**lg), written);  // partly from the buffer, partly from files
  auto durable = (*lg)->sync();
  ASSERT_TRUE(durable.ok());
  EXPECT_EQ(*durable, (*lg)->end());
  EXPECT_EQ((*lg)->durable_end(), (*lg)->end());
  expect_records(read_all(**lg), written);
}

TEST(log, random_reads_return_the_record_and_the_next_position) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir, small_segments());
  ASSERT_TRUE(lg.ok());
  const auto written = append_n(**lg, 0, 300);
  ASSERT_TRUE((*lg)->sync().ok());
  const auto more = append_n(**lg, 300, 20);  // some still buffered
  auto all = written;
  all.insert(all.end(), more.begin(), more.end());
  for (std::size_t k = 0; k < all.size(); k += 7) {
    auto rec = (*lg)->read(all[k].pos);
    ASSERT_TRUE(rec.ok()) << k << ": " << rec.error().message;
    EXPECT_EQ(rec->type, type_for(all[k].index));
    EXPECT_EQ(rec->payload, payload_for(all[k].index));
    if (k + 1 < all.size() &&
        (all[k + 1].pos >> log_format::offset_bits) == (all[k].pos >> log_format::offset_bits)) {
      EXPECT_EQ(rec->next, all[k + 1].pos);
    }
  }
}

TEST(log, reopen_finds_every_record_and_continues) {
  io::mem_file_system fs;
  std::vector<appended> written;
  position end_before;
  {
    auto lg = log::open(fs, dir, small_segments());
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 0, 200);
    ASSERT_TRUE((*lg)->sync().ok());
    end_before = (*lg)->end();
  }
  auto lg = log::open(fs, dir, small_segments());
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ((*lg)->end(), end_before);
  EXPECT_EQ((*lg)->durable_end(), end_before);
  expect_records(read_all(**lg), written);
  const auto more = append_n(**lg, 200, 50);
  EXPECT_GE(more.front().pos, end_before);
  written.insert(written.end(), more.begin(), more.end());
  ASSERT_TRUE((*lg)->sync().ok());
  expect_records(read_all(**lg), written);
}

// log_options::prepare_segments: prepare_next_segment() writes the next segment
// ahead (header and zeros, under a temporary name); the log rolls into it, early if
// the active segment was not prepared; a roll cuts the zeros off the finished segment
// and a reopen drops the last one's quietly, so records and positions are as without.
TEST(log, segments_written_ahead_are_rolled_into_cut_at_rolls_and_dropped_at_reopen) {
  io::mem_file_system fs;
  log_options o;
  o.segment_bytes = 64 * 1024;
  std::vector<appended> written;
  position end_before;
  {
    auto lg = log::open(fs, dir, o);
    ASSERT_TRUE(lg.ok());
    written = append_n(**lg, 0, 20);
    ASSERT_TRUE((*lg)->sync().ok());
    EXPECT_TRUE((*lg)->wants_prepared_segment());
    ASSERT_TRUE((*lg)->prepare_next_segment().ok());
    EXPECT_FALSE((*lg)->wants_prepared_segment());
    const std::string temp = fmt::format("{}/{:020}.prepared.log.tmp", dir, 2);
    EXPECT_EQ(*fs.file_size(temp), 64u * 1024);
    EXPECT_EQ((*lg)->segment_count(), 1u);
    // The next append rolls into it: segment 1 was not written ahead.
    const auto more = append_n(**lg, 20, 5);
    written.insert(written.end(), more.begin(), more.end());
    EXPECT_EQ((*lg)->segment_count(), 2u);
    EXPECT_EQ(more.front().pos >> log_format::offset_bits, 2u);
    EXPECT_FALSE(*fs.exists(temp));
    EXPECT_EQ(*fs.file_size(segment_file(2)), 64u * 1024);
    ASSERT_TRUE((*lg)->sync().ok());
    expect_records(read_all(**lg), written);
    end_before = (*lg)->end();
    // A preparation for segment 3 left behind by a stop is removed by the next open.
    ASSERT_TRUE((*lg)->prepare_next_segment().ok());
  }
  auto lg = log::open(fs, dir, o);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  EXPECT_EQ((*lg)->end(), end_before);
  EXPECT_EQ(*fs.file_size(segment_file(2)), end_before & log_format::offset_mask);
  EXPECT_FALSE(*fs.exists(fmt::format("{}/{:020}.prepared.log.tmp", dir, 3)));
  expect_records(read_all(**lg), written);
  // Appends continue at the record end, through rolls into prepared segments.
  for (std::uint64_t i = 25; i < 1500; i += 10) {
    const auto more = append_n(**lg, i, 10);
    written.insert(written.end(), more.begin(), more.end());
    ASSERT_TRUE((*lg)->sync().ok());
    if ((*lg)->wants_prepared_segment()) {
      ASSERT_TRUE((*lg)->prepare_next_segment().ok());
    }
  }
  ASSERT_GE((*lg)->segment_count(), 5u);
  expect_records(read_all(**lg), written);
  for (std::uint64_t n = 1; n < (*lg)->segment_count(); ++n) {
    // A finished segment ends with its last record.
    auto size = fs.file_size(segment_file(n));
    ASSERT_TRUE(size.ok());
    const auto next_start = (n + 1) << log_format::offset_bits;
    const auto last_in_n = std::find_if(written.rbegin(), written.rend(),
                                        [&](const appended& a) { return a.pos < next_start; });
    ASSERT_NE(last_in_n, written.rend());
    EXPECT_EQ(*size, (last_in_n->pos & log_format::offset_mask) + log_format::record_header_size +
                         payload_for(last_in_n->index).size())
        << "segment " << n;
  }
  // The active one was written ahead: it holds zeros past its records.
  EXPECT_EQ(*fs.file_size(segment_file((*lg)->segment_count())), 64u * 1024);
}

TEST(log, works_on_the_real_disk) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "outrider-log-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl + "/log";
  std::vector<appended> written;
  {
    auto lg = log::open(io::posix_file_system(), path, small_segments());
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    written = append_n(**lg, 0, 400);
    ASSERT_TRUE((*lg)->sync().ok());
    expect_records(read_all(**lg), written);
  }
  {
    auto lg = log::open(io::posix_file_system(), path, small_segments());
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    expect_records(read_all(**lg), written);
    ASSERT_TRUE((*lg)->remove_segments_before(written[300].pos).ok());
    EXPECT_LE((*lg)->begin(), written[300].pos);
    EXPECT_GT((*lg)->begin(), written[0].pos);
  }
  std::filesystem::remove_all(tmpl);
}

// cached_tail_bytes drops durable bytes from the OS page cache (a hint): every
// record stays readable, from the file, in this process and after a reopen.
TEST(log, dropping_synced_bytes_from_the_page_cache_keeps_every_record_readable) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "outrider-log-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl + "/log";
  log_options o;
  o.segment_bytes = std::uint64_t{8} << 20;
  o.cached_tail_bytes = 1;
  auto payload = [](std::uint64_t i) {
    std::vector<std::byte> p(4000, static_cast<std::byte>(i));
    p[0] = static_cast<std::byte>(i >> 8);
    return p;
  };
  std::vector<position> written;
  {
    auto lg = log::open(io::posix_file_system(), path, o);
    ASSERT_TRUE(lg.ok()) << lg.error().message;
    for (std::uint64_t i = 0; i < 5000; ++i) {
      auto pos = (*lg)->append(1, payload(i));
      ASSERT_TRUE(pos.ok()) << pos.error().message;
      written.push_back(*pos);
      if (i % 200 == 199) {
        ASSERT_TRUE((*lg)->sync().ok());
      }
    }
    ASSERT_TRUE((*lg)->sync().ok());
    EXPECT_GE((*lg)->segment_count(), 3u);
    for (std::uint64_t i = 0; i < written.size(); i += 97) {
      auto rec = (*lg)->read(written[i]);
      ASSERT_TRUE(rec.ok()) << rec.error().message;
      EXPECT_EQ(rec->payload, payload(i));
    }
  }
  auto lg = log::open(io::posix_file_system(), path, o);
  ASSERT_TRUE(lg.ok()) << lg.error().message;
  auto rd = (*lg)->read_from((*lg)->begin());
  ASSERT_TRUE(rd.ok());
  std::uint64_t i = 0;
  while (true) {
    auto next = rd->next();
    ASSERT_TRUE(next.ok());
    if (!next->has_value()) break;
    ASSERT_LT(i, written.size());
    EXPECT_EQ((**next).pos, written[i]);
    EXPECT_EQ((**next).payload, payload(i));
    ++i;
  }
  EXPECT_EQ(i, written.size());
  std::filesystem::remove_all(tmpl);
}

TEST(log, a_record_larger_than_a_segment_gets_a_segment_of_its_own) {
  io::mem_file_system fs;
  log_options o = small_segments();
  auto lg = log::open(fs, dir, o);
  ASSERT_TRUE(lg.ok());
  ASSERT_TRUE((*lg)->append(1, payload_for(1)).ok());
  std::vector<std::byte> big(10000, std::byte{0x5a});
  auto pos = (*lg)->append(2, big);
  ASSERT_TRUE(pos.ok());
  auto after = (*lg)->append(3, payload_for(3));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*lg)->segment_count(), 3u);
  auto rec = (*lg)->read(*pos);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->payload, big);
  ASSERT_TRUE((*lg)->sync().ok());
  (*lg).reset();
  auto reopened = log::open(fs, dir, o);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(read_all(**reopened).size(), 3u);
}

TEST(log, bad_inputs_are_errors_not_crashes) {
  io::mem_file_system fs;
  log_options o = small_segments();
  o.max_record_bytes = 1000;
  auto lg = log::open(fs, dir, o);
  ASSERT_TRUE(lg.ok());
  std::vector<std::byte> too_big(1001);
  auto big = (*lg)->append(0, too_big);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, errc::invalid_argument);
  EXPECT_TRUE((*lg)->append(0, std::vector<std::byte>(1000)).ok());  // the limit itself fits

  const auto written = append_n(**lg, 0, 100);
  ASSERT_TRUE((*lg)->sync().ok());
  const auto buffered = append_n(**lg, 100, 3);
  for (position bogus : {position{0}, (*lg)->end(), (*lg)->end() + 1, ~position{0},
                         written[5].pos + 1, written[50].pos + 3, buffered[1].pos + 2,
                         written[0].pos - 1, (written[60].pos | log_format::offset_mask)}) {
    auto rec = (*lg)->read(bogus);
    EXPECT_FALSE(rec.ok()) << std::hex << bogus;
  }
  auto reader = (*lg)->read_from((*lg)->end() + 1);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, errc::invalid_argument);
  // A reader started mid-record reports an error.
  auto mid = (*lg)->read_from(written[10].pos + 4);
  ASSERT_TRUE(mid.ok());
  EXPECT_FALSE(mid->next().ok());

  for (log_options bad : {log_options{.segment_bytes = 10}, log_options{.max_record_bytes = 0},
                          log_options{.segment_bytes = std::uint64_t{1} << 45},
                          log_options{.write_buffer_bytes = 0}}) {
    auto opened = log::open(fs, "/other", bad);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, errc::invalid_argument);
  }
  auto empty_dir = log::open(fs, "");
  EXPECT_FALSE(empty_dir.ok());
}

TEST(log, reclamation_removes_whole_segments_before_a_position) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir, small_segments());
  ASSERT_TRUE(lg.ok());
  const auto written = append_n(**lg, 0, 400);
  ASSERT_TRUE((*lg)->sync().ok());
  const auto segments = (*lg)->segment_count();
  const auto bytes = (*lg)->bytes_on_disk();
  const position keep_from = written[200].pos;
  ASSERT_TRUE((*lg)->remove_segments_before(keep_from).ok());
  EXPECT_LT((*lg)->segment_count(), segments);
  EXPECT_LT((*lg)->bytes_on_disk(), bytes);
  EXPECT_LE((*lg)->begin(), keep_from);
  // Records from keep_from on are all there; records of removed segments are not_found.
  auto rd = (*lg)->read_from(keep_from);
  ASSERT_TRUE(rd.ok());
  std::size_t seen = 0;
  for (auto next = rd->next(); next.ok() && next->has_value(); next = rd->next()) ++seen;
  EXPECT_EQ(seen, 200u);
  auto gone = (*lg)->read(written[0].pos);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, errc::not_found);
  auto gone_reader = (*lg)->read_from(written[0].pos);
  ASSERT_FALSE(gone_reader.ok());
  EXPECT_EQ(gone_reader.error().code, errc::not_found);
  // read_from(begin()) starts at the first record still stored.
  const auto rest = read_all(**lg);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().pos, (*lg)->begin());
  EXPECT_EQ(rest.back().pos, written.back().pos);

  // Never the active segment, and the result survives a reopen.
  ASSERT_TRUE((*lg)->remove_segments_before((*lg)->end()).ok());
  EXPECT_EQ((*lg)->segment_count(), 1u);
  const position begin = (*lg)->begin();
  (*lg).reset();
  auto reopened = log::open(fs, dir, small_segments());
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ((*reopened)->begin(), begin);
  EXPECT_EQ(read_all(**reopened).back().pos, written.back().pos);
}

TEST(log, append_and_sync_on_two_threads) {
  io::mem_file_system fs;
  log_options o = small_segments();
  o.segment_bytes = 64 * 1024;
  o.write_buffer_bytes = 8 * 1024;
  auto opened = log::open(fs, dir, o);
  ASSERT_TRUE(opened.ok());
  log& lg = **opened;
  constexpr std::uint64_t count = 20000;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> syncs{0};
  std::vector<appended> written;
  // Appends, and reads back while syncs are in flight (records move from buffer to file).
  auto append_all = [&] {
    for (std::uint64_t i = 0; i < count; ++i) {
      // Halfway, wait for a sync to have completed, so the two threads surely overlap
      // however the scheduler runs them (the appender alone could otherwise finish first).
      if (i == count / 2) {
        while (syncs.load() == 0) std::this_thread::yield();
      }
      auto pos = lg.append(type_for(i), payload_for(i));
      ASSERT_TRUE(pos.ok()) << pos.error().message;
      written.push_back({*pos, i});
      if (i % 50 == 0) {
        auto rec = lg.read(written[i / 2].pos);
        ASSERT_TRUE(rec.ok()) << rec.error().message;
        ASSERT_EQ(rec->payload, payload_for(i / 2));
      }
    }
  };
  std::thread appender([&] {
    append_all();
    done = true;  // also after a failed assertion, so the sync loop ends
  });
  position last = 0;
  while (!done) {
    auto durable = lg.sync();
    ASSERT_TRUE(durable.ok()) << durable.error().message;
    ASSERT_GE(*durable, last);
    ASSERT_LE(*durable, lg.end());
    last = *durable;
    ++syncs;
  }
  appender.join();
  ASSERT_TRUE(lg.sync().ok());
  EXPECT_GT(syncs.load(), 0u);
  ASSERT_EQ(written.size(), count);
  fs.crash_for_test(io::crash_mode::drop_unsynced);
  opened->reset();
  auto reopened = log::open(fs, dir, o);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  expect_records(read_all(**reopened), written);
}

// A file system whose file syncs can be held (armed by the test) until released: a sync
// "in flight" for as long as the test wants, with no timing involved.
class held_sync_file_system final : public io::forwarding_file_system {
 public:
  explicit held_sync_file_system(io::file_system& inner) : forwarding_file_system(inner) {}

  // The next sync() of any file waits until release() (or a 60 s guard against a hang).
  void hold_next_sync() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }
  void wait_until_held() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // False if a held sync went on by its guard rather than by release().
  bool released_in_time() const {
    std::lock_guard lock(mu_);
    return !timed_out_;
  }

  result<std::unique_ptr<io::writable_file>> open_for_append(const std::string& path) override {
    auto f = inner().open_for_append(path);
    if (!f) return f;
    return std::unique_ptr<io::writable_file>(new file(*this, std::move(*f)));
  }

 private:
  class file final : public io::forwarding_writable_file {
   public:
    file(held_sync_file_system& fs, std::unique_ptr<io::writable_file> inner)
        : forwarding_writable_file(std::move(inner)), fs_(fs) {}
    status sync() override {
      fs_.maybe_hold();
      return inner().sync();
    }

   private:
    held_sync_file_system& fs_;
  };

  void maybe_hold() {
    std::unique_lock lock(mu_);
    if (!armed_) return;
    armed_ = false;
    held_ = true;
    cv_.notify_all();
    // The guard only turns a hang (append waiting for this sync) into a failure.
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return released_; })) timed_out_ = true;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool held_ = false;
  bool released_ = false;
  bool timed_out_ = false;
};

TEST(log, append_buffers_instead_of_waiting_for_a_sync_in_flight) {
  // The broker's engine appends while the sync thread's fdatasync runs: a full write buffer
  // grows (to write_buffer_max_bytes) instead of waiting for the sync to write it.
  io::mem_file_system mem;
  held_sync_file_system fs(mem);
  log_options o;
  o.write_buffer_bytes = 8 * 1024;
  o.write_buffer_max_bytes = 256 * 1024;
  o.prepare_segments = false;
  auto opened = log::open(fs, dir, o);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  log& lg = **opened;
  std::vector<appended> written = append_n(lg, 0, 10);
  fs.hold_next_sync();
  result<position> synced = position{0};
  std::thread syncer([&] { synced = lg.sync(); });
  fs.wait_until_held();
  // ~100 KiB: past the write buffer, within the most it may grow to while the sync runs.
  for (auto& a : append_n(lg, 10, 100)) written.push_back(a);
  ASSERT_EQ(written.size(), 110u);
  // Readable from the buffer meanwhile.
  auto rec = lg.read(written.back().pos);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->payload, payload_for(109));
  fs.release();
  syncer.join();
  EXPECT_TRUE(fs.released_in_time()) << "append waited for the sync in flight";
  ASSERT_TRUE(synced.ok()) << synced.error().message;
  EXPECT_EQ(*synced, written[10].pos);  // the held sync covered what was appended before it
  auto durable = lg.sync();
  ASSERT_TRUE(durable.ok()) << durable.error().message;
  EXPECT_EQ(*durable, lg.end());
  mem.crash_for_test(io::crash_mode::drop_unsynced);
  opened->reset();
  auto reopened = log::open(mem, dir, o);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  expect_records(read_all(**reopened), written);
}

TEST(log, a_reader_sees_records_appended_after_it_reached_the_end) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir, small_segments());
  ASSERT_TRUE(lg.ok());
  auto rd = (*lg)->read_from((*lg)->begin());
  ASSERT_TRUE(rd.ok());
  std::uint64_t seen = 0;
  for (std::uint64_t round = 0; round < 20; ++round) {
    const auto batch = append_n(**lg, round * 30, 30);
    if (round % 3 == 0) {
      ASSERT_TRUE((*lg)->sync().ok());
    }
    for (const auto& a : batch) {
      auto next = rd->next();
      ASSERT_TRUE(next.ok()) << next.error().message;
      ASSERT_TRUE(next->has_value());
      ASSERT_EQ((*next)->pos, a.pos);
      ++seen;
    }
    auto at_end = rd->next();
    ASSERT_TRUE(at_end.ok());
    EXPECT_FALSE(at_end->has_value());
  }
  EXPECT_EQ(seen, 600u);
  EXPECT_GT((*lg)->segment_count(), 5u);
}

TEST(log, durable_end_follows_sync) {
  io::mem_file_system fs;
  auto lg = log::open(fs, dir);
  ASSERT_TRUE(lg.ok());
  const position start = (*lg)->end();
  ASSERT_TRUE((*lg)->append(7, payload_for(7)).ok());
  EXPECT_GT((*lg)->end(), start);
  EXPECT_EQ((*lg)->durable_end(), start);
  auto durable = (*lg)->sync();
  ASSERT_TRUE(durable.ok());
  EXPECT_EQ(*durable, (*lg)->end());
  EXPECT_EQ((*lg)->durable_end(), (*lg)->end());
  // A sync with nothing new is free and returns the same end.
  auto again = (*lg)->sync();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *durable);
}

}  // namespace
}  // namespace outrider::storage
