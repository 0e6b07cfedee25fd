// disk_scheduler: the delay index with a bounded in-memory horizon.
//
// Every entry is appended (buffered) to an on-disk bucket file named by its due-time range
// (bucket_width_ns, e.g. 10 s); only buckets whose range starts within load_ahead_ns of the last
// `now` seen are loaded into a timing_wheel. So far entries cost ~0 bytes of memory (a bounded
// write buffer plus ~100 bytes per bucket), near entries 16 bytes. The bucket file is also the
// durable copy of near entries: the wheel is a cache of the loaded buckets.
//
// Durability contract (the broker's log is the source of truth):
//  - checkpoint(high_water) flushes and syncs every bucket and atomically records, per bucket, the
//    length that is durable, plus `high_water` and `fired_through` (every entry with a due time
//    <= fired_through has been popped).
//  - open() truncates each bucket to its checkpointed length, removes files created after the
//    checkpoint, drops checkpointed entries with due <= fired_through, and returns high_water.
//    The caller replays its log from high_water, re-inserting; since everything after the
//    checkpoint was cut away, a replayed entry cannot exist twice. Entries popped after the last
//    checkpoint fire again after a crash (at-least-once), never early.
//
// Errors: io_error / disk_full from the filesystem; data_corruption for a checksum or format
// failure in checkpointed data. A failed insert adds nothing. A failed rollback of a partial
// append or a failed sync makes the scheduler refuse further work (the error is sticky) because
// its files can no longer be trusted; reopen it.
// Thread-safety: none; one owner thread. Files only through io::file_system.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "timing/scheduler.h"
#include "timing/timing_wheel.h"

namespace outrider::timing {

struct disk_scheduler_options {
  // Due-time range of one bucket file. Only used when the directory has no checkpoint yet;
  // afterwards the checkpointed width wins. REQUIRES: > 0.
  std::int64_t bucket_width_ns = 10'000'000'000;
  // A bucket is loaded when the last `now` seen is within this of its start, so loading never
  // makes an entry late. REQUIRES: >= 0.
  std::int64_t load_ahead_ns = 2'000'000'000;
  // Entries buffered in memory before they are written to their bucket files.
  std::size_t max_buffered_entries = std::size_t{1} << 19;
  // Tick of the in-memory wheel. REQUIRES: > 0.
  std::int64_t tick_ns = 1'000'000;
  // Coarse tier (0 = off): entries due beyond the cascaded range go to coarse bucket files of
  // this width (a multiple of bucket_width_ns), so a 7-day spread touches 168 one-hour files
  // instead of 60,480 ten-second ones. A coarse bucket is read back and re-inserted as ordinary
  // (fine) entries once the last `now` is within coarse_lead_ns of its start.
  // REQUIRES: coarse_lead_ns >= load_ahead_ns when on. With the coarse tier on, the index is a
  // scratch index (rebuilt from the caller's log): checkpoint() is refused and open() removes
  // leftover coarse files.
  std::int64_t coarse_width_ns = 0;
  std::int64_t coarse_lead_ns = 0;
};

class disk_scheduler final : public scheduler {
 public:
  struct opened {
    std::unique_ptr<disk_scheduler> scheduler;
    // The caller's log position recorded by the last checkpoint (0 if none): replay from here.
    std::uint64_t high_water = 0;
  };

  // Opens or creates the index in `dir` and recovers it to its last checkpoint (see above).
  // `fs` must outlive the scheduler. Errors: invalid_argument (options), io_error, disk_full,
  // data_corruption (checkpoint or checkpointed bucket bytes damaged or missing).
  static result<opened> open(io::file_system& fs, std::string dir,
                             disk_scheduler_options options = {});

  // Buffers the entry for its bucket (and adds it to the wheel if the bucket is loaded). May
  // write buffered entries first; on error nothing is added.
  status insert(std::int64_t due_ns, std::uint64_t ref) override;
  // Loads buckets starting within load_ahead of now, then pops from the wheel (see scheduler).
  // Errors: io_error, data_corruption while loading a bucket (nothing popped; retry or reopen).
  result<std::size_t> pop_due(std::int64_t now_ns, std::vector<due_entry>& out,
                              std::size_t max) override;
  // The wheel's next due time, or the load time (start - load_ahead) of the next unloaded bucket,
  // whichever is earlier: a timer armed for it also triggers loading in time.
  std::optional<std::int64_t> next_due() const override;
  std::uint64_t size() const override;

  // Makes every entry inserted so far durable and records that they cover the caller's log up to
  // `high_water`. On error the previous checkpoint stays in force.
  // Errors: failed_precondition with the coarse tier on (see options).
  status checkpoint(std::uint64_t high_water);
  // Calls `fn` for every entry held (the wheel's, then each unloaded bucket's, fine and coarse),
  // in no particular order, reading the bucket files; stops at the first error `fn` returns.
  // For snapshots by the owner (the broker's checkpoint), not hot paths. Errors: io_error,
  // data_corruption from a bucket file, or `fn`'s.
  status for_each_entry(const std::function<status(const due_entry&)>& fn) const;
  // The entries held now, readable on another thread while the owner goes on changing the
  // index: the in-memory ones (wheel and write buffers) copied, and each unloaded bucket file
  // opened (a later removal does not take it away) with its length now (later appends are not
  // read). Taking one costs a copy of the in-memory entries and one open per bucket file.
  struct entries_snapshot {
    struct file_part {
      std::unique_ptr<io::readable_file> file;
      std::string path;
      std::uint64_t length = 0;
      std::uint64_t recovered_length = 0;
    };
    std::vector<due_entry> in_memory;
    std::vector<file_part> files;
    std::int64_t fired_through = 0;
    // Calls `fn` for every entry (as for_each_entry), reading the files; any thread, once.
    // Leaves in_memory empty with its capacity kept (for the next snapshot()).
    // Errors: io_error, data_corruption from a bucket file, or `fn`'s.
    status for_each(const std::function<status(const due_entry&)>& fn);
  };
  // `buffer` is reused for the in-memory copy (pass back a previous snapshot's in_memory: its
  // pages are already mapped, so a snapshot under memory pressure does not stall on page faults).
  // Errors: the filesystem's (opening a bucket file), a broken index's.
  result<entries_snapshot> snapshot(std::vector<due_entry> buffer = {}) const;
  // Writes buffered entries to their bucket files (not durable until checkpoint()).
  status flush();

  // Observability: entries held in memory by the wheel, and bucket files tracked.
  std::uint64_t loaded_entries() const { return wheel_.size(); }
  std::size_t bucket_count() const { return buckets_.size(); }
  std::size_t coarse_bucket_count() const { return coarse_.size(); }

 private:
  struct bucket {
    std::uint64_t file_length = 0;       // bytes appended to the file
    std::uint64_t file_entries = 0;      // entries in those bytes
    std::uint64_t synced_length = 0;     // bytes made durable
    std::uint64_t recovered_length = 0;  // prefix from before open(), filtered by fired_through
    std::vector<due_entry> pending;      // not yet appended
    bool loaded = false;                 // every entry of the bucket is in the wheel
  };
  using bucket_map = std::map<std::int64_t, bucket>;

  disk_scheduler(io::file_system& fs, std::string dir, disk_scheduler_options options,
                 std::int64_t fired_through);

  std::int64_t bucket_start(std::int64_t due_ns) const;
  std::int64_t coarse_start(std::int64_t due_ns) const;
  std::string bucket_path(std::int64_t start) const;
  std::string coarse_path(std::int64_t start) const;
  status insert_fine(std::int64_t due_ns, std::uint64_t ref);
  status cascade_through(std::int64_t target);
  result<std::vector<due_entry>> read_entries(const std::string& path, const bucket& b,
                                              bool filter_recovered) const;
  std::string path_of(std::string_view name) const;
  status flush_bucket(const std::string& path, bucket& b);
  status load_through(std::int64_t horizon);
  status load_bucket(std::int64_t start, bucket& b);
  status write_checkpoint(std::uint64_t high_water, std::int64_t fired_through,
                          const std::vector<std::int64_t>& dead);
  std::int64_t compute_fired_through() const;
  status fail(error e);

  io::file_system& fs_;
  std::string dir_;
  disk_scheduler_options options_;
  timing_wheel wheel_;
  bucket_map buckets_;
  bucket_map coarse_;  // coarse tier: buckets not yet cascaded
  // Coarse tier: entries due before this go to fine buckets; every coarse bucket starting
  // before it has been cascaded.
  std::int64_t cascaded_through_;
  std::uint64_t coarse_entries_ = 0;
  // Every bucket starting at or before horizon_ is loaded; later ones are not.
  std::int64_t horizon_;
  std::int64_t last_now_;
  // From the checkpoint open() recovered: checkpointed entries due at or before it already fired.
  std::int64_t recovered_fired_through_;
  std::uint64_t unloaded_entries_ = 0;
  std::size_t pending_entries_ = 0;
  std::optional<error> broken_;
};

}  // namespace outrider::timing
