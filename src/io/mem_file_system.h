// mem_file_system: an in-memory file_system for tests, and a fault injector.
//
// It keeps the durability model of file_system.h exactly, so crash tests can
// check what survives a power loss:
//  - per file, the bytes made durable by the last sync() and the appended bytes
//    not yet synced (and, after a truncate below the synced length, the old
//    durable image, which a crash brings back);
//  - a live namespace (what list_dir/exists see now) and a durable namespace
//    (what the last sync_dir() of each directory recorded). create, rename and
//    remove change only the live namespace until sync_dir() of the parent.
// crash_for_test() simulates power loss and reboot: the live namespace becomes
// the durable one (un-synced creations, renames, removals are undone, and so
// is anything under a directory whose own entry was never made durable), every
// file loses its unsynced bytes (or keeps a random, possibly garbled, prefix of
// them), and every file object opened before the crash fails from then on.
//
// Paths are '/'-separated; "", "." and "/" name the root, which always exists.
// Thread-safe: one mutex guards everything, file objects included.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/errc.h"
#include "base/random.h"
#include "io/file_system.h"

namespace outrider::io {

enum class crash_mode {
  drop_unsynced,  // every unsynced byte is lost
  tear_tail,      // a random prefix of the unsynced bytes survives; its last bytes may be garbled
};

// Operations fail_next_for_test() can make fail.
enum class fs_op { append, sync, open, truncate, sync_dir, rename, remove };

class mem_file_system final : public file_system {
 public:
  // `seed` drives the tear_tail choices, so a failing crash test replays exactly.
  explicit mem_file_system(std::uint64_t seed = 1);
  ~mem_file_system() override;
  mem_file_system(const mem_file_system&) = delete;
  mem_file_system& operator=(const mem_file_system&) = delete;

  result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) override;
  result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) override;
  status create_dirs(const std::string& path) override;
  result<std::vector<std::string>> list_dir(const std::string& dir) override;
  status remove_file(const std::string& path) override;
  status rename(const std::string& from, const std::string& to) override;
  result<bool> exists(const std::string& path) override;
  result<std::uint64_t> file_size(const std::string& path) override;
  status sync_dir(const std::string& dir) override;
  // capacity - used when a capacity is set, else a large constant.
  result<std::uint64_t> free_space(const std::string& path) override;

  // Power loss and reboot (see the file comment). Open file objects go stale.
  void crash_for_test(crash_mode mode);
  // The next `op` (on any file) fails with `code` and has no effect. One-shot per op.
  void fail_next_for_test(fs_op op, errc code);
  // Total bytes all live files may hold; an append that would exceed it fails with
  // disk_full and writes nothing. std::nullopt removes the limit.
  void set_capacity_for_test(std::optional<std::uint64_t> bytes);
  // XORs `mask` into the byte at `offset` of `path`, live and durable alike (bit rot).
  status corrupt_for_test(const std::string& path, std::uint64_t offset, std::byte mask);
  // Bytes held by all live files.
  std::uint64_t used_bytes() const;
  // Bytes of `path` that the last sync made durable (0 if never synced).
  result<std::uint64_t> synced_size_for_test(const std::string& path) const;

 private:
  struct node;
  struct entry {
    bool is_dir = false;
    std::shared_ptr<node> file;  // null for directories
  };
  using name_space = std::map<std::string, entry>;
  class mem_writable_file;
  class mem_readable_file;

  // REQUIRES: mutex_ held.
  status take_fault(fs_op op, const std::string& path);
  bool dir_exists(const name_space& ns, const std::string& path) const;
  std::uint64_t used_bytes_locked() const;

  mutable std::mutex mutex_;
  name_space live_;
  name_space durable_;
  std::map<fs_op, errc> faults_;
  std::optional<std::uint64_t> capacity_;
  std::uint64_t generation_ = 0;  // bumped by each crash; older file objects are stale
  xoshiro_random random_;
};

}  // namespace outrider::io
