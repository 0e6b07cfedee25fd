// The filesystem seam. Storage code (the durable log, the delay index, the
// trace store) reaches the disk only through this interface, so tests can run
// it on mem_file_system (mem_file_system.h), which can drop unsynced writes,
// tear a tail, fail a call or fill the disk on demand.
//
// Semantics (the contract every implementation keeps, the fault model of the
// crash tests):
//  - append() data is durable only after sync() returns ok; after a crash any
//    suffix of the unsynced appends may be missing or torn.
//  - create_file/rename/remove are durable only after sync_dir() of the parent.
//  - Errors are values: errc::io_error for an OS failure (message names the
//    path and the OS reason), errc::disk_full for ENOSPC/EDQUOT, errc::not_found
//    for a missing path. Nothing here throws.
// Thread-safety: a file object is used by one thread at a time; the
// file_system itself is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace outrider::io {

// An append-only file being written.
class writable_file {
 public:
  virtual ~writable_file() = default;
  // Appends `data` at the end of the file (buffered by the OS until sync()).
  virtual status append(std::span<const std::byte> data) = 0;
  // Makes every byte appended so far durable (fdatasync).
  virtual status sync() = 0;
  // Cuts the file to `size` bytes (recovery of a torn tail; zeros written by preallocate()
  // past `size` go too) and appends from there. Not durable until sync().
  virtual status truncate(std::uint64_t size) = 0;
  // Current size including unsynced appends: where the next append() writes.
  virtual std::uint64_t size() const = 0;
  // Space ahead of the appends: writes zero bytes so that the file holds at least `end`
  // bytes, without moving size() (the next append overwrites the zeros). An fdatasync
  // after appends into such blocks has no allocation or file size to commit (on ext4 about
  // half the time of one that grows the file). The zeros are ordinary file contents to
  // readers, to file_size() and to a later open_for_append (which starts after them); like
  // appends they are durable only after sync(). Best effort: the default does nothing.
  virtual status preallocate(std::uint64_t /*end*/) { return {}; }
  virtual status close() = 0;
  // A hint after sync(): bytes [offset, offset + length) are durable and need not stay in
  // the OS page cache (posix_fadvise DONTNEED). Best effort; does nothing by default.
  virtual void drop_cached(std::uint64_t /*offset*/, std::uint64_t /*length*/) {}
};

// A file opened for positional reads. Safe for concurrent reads.
class readable_file {
 public:
  virtual ~readable_file() = default;
  // Reads up to out.size() bytes at `offset`; returns the count read (short at EOF).
  virtual result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const = 0;
  virtual result<std::uint64_t> size() const = 0;
};

class file_system {
 public:
  virtual ~file_system() = default;

  // Opens `path` for appending, creating it if missing; the write position is the end.
  virtual result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) = 0;
  virtual result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) = 0;
  // Creates the directory and any missing parents; ok if it exists.
  virtual status create_dirs(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, unsorted.
  virtual result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  virtual status remove_file(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual status rename(const std::string& from, const std::string& to) = 0;
  virtual result<bool> exists(const std::string& path) = 0;
  virtual result<std::uint64_t> file_size(const std::string& path) = 0;
  // Makes creations, renames and removals in `dir` durable (fsync of the directory).
  virtual status sync_dir(const std::string& dir) = 0;
  // Free bytes on the filesystem holding `path` (for disk-full checks).
  virtual result<std::uint64_t> free_space(const std::string& path) = 0;
};

// The real disk (POSIX calls). Thread-safe, stateless.
file_system& posix_file_system();

}  // namespace outrider::io
