// The durable log: a segmented, append-only sequence of checksummed records
// (format: log_format.h, docs/formats/log.md). The embedded broker writes every
// state change here and rebuilds its state from it on restart.
//
//   auto lg = storage::log::open(io::posix_file_system(), "/var/lib/outrider/log");
//   auto pos = (*lg)->append(kind, payload);   // buffered, cheap
//   auto durable = (*lg)->sync();              // one write + one fdatasync for the whole batch
//
// Durability: append() only buffers (in user space, written with write(2) when
// the buffer exceeds log_options::write_buffer_bytes); a record is durable once
// a sync() that started after its append() returns ok. A segment roll makes
// the finished segment durable before the next one is created, so only the
// last segment can ever have a torn tail.
//
// Errors: io_error/disk_full from the filesystem; a failed append or write
// leaves the log unchanged and usable (retry after freeing space). A failed
// fdatasync is sticky: the kernel may have dropped the dirty pages, so every
// later append/sync fails with io_error and the caller must reopen the log
// (recovery then reads what really is on disk).
//
// Threading: append() may run on one thread while sync() runs on another
// (group commit: appends of batch N+1 proceed while batch N's fdatasync is in
// flight). read()/read_from()/end()/durable_end() may also run concurrently
// with sync() on the appending thread. No other concurrency: in particular
// remove_segments_before() and readers run on the appending thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "io/file_system.h"
#include "storage/log_format.h"

namespace outrider::storage {

// Ordered and opaque to callers: (segment number << 40) | byte offset in the segment.
using position = std::uint64_t;

struct log_options {
  // A segment is closed and a new one started when the next record would pass this size
  // (a single record larger than this gets a segment of its own).
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  // Largest payload append() accepts; larger ones fail with invalid_argument.
  std::uint32_t max_record_bytes = std::uint32_t{16} << 20;
  // Buffered bytes that trigger a write(2) from append().
  std::uint32_t write_buffer_bytes = std::uint32_t{1} << 20;
  // While a sync() on another thread holds the file (its write and fdatasync), append()
  // buffers up to this many bytes instead of waiting for it to write the buffer itself:
  // the appending thread (the broker's engine) does not stall for an fdatasync, which can
  // take tens of ms on a busy disk. The sync writes them with the rest. At least
  // write_buffer_bytes.
  std::uint32_t write_buffer_max_bytes = std::uint32_t{4} << 20;
  // Open checks every record of every segment, not just the last segment's.
  bool verify_all_segments = false;
  // On corruption (a bad record before the torn tail, or a bad segment header), truncate
  // the log at the damage (deleting later segments) and log an error, instead of failing
  // open() with data_corruption. Loses data: for an operator who chose it.
  bool repair = false;
  // Page cache use of a write-mostly log (0: left to the OS). After a sync, the active
  // segment's durable bytes more than this far behind its end are dropped from the OS page
  // cache, and a finished segment is dropped whole when the next one starts. Writing into
  // an ever larger page cache made each write(2) dearer as a span store grew
  // (docs/benchmarks.md, collector); reads of dropped parts go to the disk.
  std::uint64_t cached_tail_bytes = 0;
  // Segments written ahead: prepare_next_segment() (the owner calls it on a background
  // thread) writes the next segment's header and zeros up to segment_bytes, and the log
  // rolls into it (early, if the active segment was not prepared). Appends then overwrite
  // allocated blocks and an fdatasync commits no file size: ~0.1 instead of ~0.2 ms per
  // group commit on this machine class (docs/benchmarks.md). The last segment may end
  // with zeros; recovery drops them (docs/formats/log.md). Off: segments grow by appends.
  bool prepare_segments = true;
};

struct record {
  position pos = 0;
  std::uint8_t type = 0;
  std::vector<std::byte> payload;
  position next = 0;  // the position just after this record (in the same segment)
};

class log {
  struct segment;
  struct read_cache;

 public:
  // Sequential reader from a position to end() (as of each next() call), across segments.
  // Used on the appending thread (or while nothing appends). Holds a pointer to the log:
  // REQUIRES the log outlives the reader.
  class reader {
   public:
    reader(reader&&) noexcept;
    reader& operator=(reader&&) noexcept;
    ~reader();
    // The next record, std::nullopt at end(), or an error (not_found if the segment was
    // reclaimed meanwhile, data_corruption on a checksum failure).
    result<std::optional<record>> next();
    position current() const noexcept { return pos_; }

   private:
    friend class log;
    reader(const log* owner, position from);
    const log* log_;
    position pos_;
    std::unique_ptr<read_cache> cache_;
  };

  // Opens the log in `dir` (created if missing) and recovers it: the last segment is
  // scanned and a torn tail (an incomplete record, or a failing one with no valid record
  // after it) is truncated and reported in the log output. Errors: data_corruption for
  // damage before the tail or a bad segment header (unless opts.repair), invalid_argument
  // for bad options, io errors.
  static result<std::unique_ptr<log>> open(io::file_system& fs, std::string dir,
                                           log_options opts = {});
  ~log();
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Appends one record; returns its position. Buffered, not durable (see sync()).
  // Errors: invalid_argument if payload is larger than max_record_bytes; disk_full or
  // io_error if a buffer flush or a segment roll failed (nothing appended; the log stays
  // usable); resource_exhausted when segment numbers run out; io_error after a failed sync.
  result<position> append(std::uint8_t type, std::span<const std::byte> payload);

  // Makes every record appended before the call durable: one write of the buffer and one
  // fdatasync. Returns the durable end (>= the end() seen when sync() started).
  result<position> sync();

  // log_options::prepare_segments: whether the segment after the active one is neither
  // prepared nor being prepared (nor failed to be). Cheap; any thread.
  bool wants_prepared_segment() const;
  // Writes the segment after the active one ahead of time, under a temporary name
  // (header, zeros up to segment_bytes, fdatasync); the roll into it renames it. Any
  // thread but meant for a background one (it writes segment_bytes); one call at a time
  // does the work, others return at once. Errors are the file system's: that segment is
  // then created by the roll as without preparation.
  status prepare_next_segment();

  position end() const noexcept { return end_.load(std::memory_order_acquire); }
  position durable_end() const noexcept { return durable_end_.load(std::memory_order_acquire); }
  // The position of the first record still stored (== end() when the log is empty).
  position begin() const;

  // The record at `pos` (a position returned by append() or a reader). Errors: not_found
  // for a reclaimed segment, invalid_argument for a position outside the stored records,
  // data_corruption for a checksum failure (a bogus position inside a record ends here too).
  result<record> read(position pos) const;
  // A reader from `from` (inclusive). Errors: not_found if `from` was reclaimed,
  // invalid_argument if it is past end().
  result<reader> read_from(position from) const;

  // Deletes the segments that lie entirely before `pos`, never the active segment.
  // Used for reclamation once nothing before `pos` is needed.
  status remove_segments_before(position pos);

  std::uint64_t segment_count() const;
  // Bytes of all segments, including those still buffered.
  std::uint64_t bytes_on_disk() const;
  const std::string& dir() const noexcept { return dir_; }

 private:
  log(io::file_system& fs, std::string dir, log_options opts);

  status recover();
  status create_segment(std::uint64_t number);
  status roll();
  result<position> flush_pending();
  result<record> read_at(position pos, read_cache* cache) const;
  std::string segment_path(std::uint64_t number) const;
  std::shared_ptr<segment> find_segment_locked(std::uint64_t number) const;
  void set_broken(const error& e);

  io::file_system& fs_;
  const std::string dir_;
  const log_options opts_;

  // Serialises writes and syncs of the active file (sync(), buffer flushes, rolls).
  // Lock order: write_mutex_ before mutex_.
  std::mutex write_mutex_;
  // Guards the segment list, the buffers and `broken_`.
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<segment>> segments_;  // consecutive numbers, last is active
  std::vector<std::byte> pending_;                 // appended, not yet handed to write(2)
  std::vector<std::byte> inflight_;  // being written by flush_pending(), still readable
  std::optional<error> broken_;
  // The next segment, written ahead by prepare_next_segment() (mutex_).
  struct prepared_segment {
    std::uint64_t number = 0;
    std::string temp_path;
    std::unique_ptr<io::writable_file> writer;
  };
  std::optional<prepared_segment> prepared_;
  std::atomic<std::uint64_t> prepared_number_{0};  // prepared_'s, or a failed attempt's
  std::atomic<bool> preparing_{false};
  std::atomic<bool> syncing_{false};  // sync() holds write_mutex_ (append() may buffer more)
  std::atomic<position> end_{0};
  std::atomic<position> durable_end_{0};
};

}  // namespace outrider::storage
