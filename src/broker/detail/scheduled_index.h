// scheduled_index: which message ids are scheduled, and where their publish
// record is, in 12 bytes a slot.
//
// An open-addressing multimap from a 64-bit fingerprint of the message id to
// the journal position of its publish record, split into 1024 shards by the
// fingerprint's top 10 bits. A slot keeps 32 more bits of the fingerprint (the
// tag) and the position: 12 bytes. Each shard probes linearly from
// tag * capacity / 2^32 (any capacity, not only powers of two), deletes by
// backward shift, grows by a quarter when 7/8 full and shrinks when under 1/4,
// so an entry costs 12 / load = 14 to 17 bytes and growing copies one shard at
// a time (no transient doubling of the whole index).
//
// 42 bits of the fingerprint are kept, so find() may return the position of
// another id whose fingerprint agrees on them (about N / 2^42 spurious
// candidates per lookup: 0.2 % of lookups at 10M entries); callers verify a
// candidate by reading the record at its position. This is what keeps a
// far-future message at tens of bytes of memory: the id itself lives only in
// the journal.
//
// Snapshots for checkpoints written on another thread: freeze() returns a
// snapshot in O(shards) and no copy. Until the writer has written a shard
// (save_snapshot(), any thread), the owner leaves that shard's slots alone and
// keeps its inserts and erases aside in a small per-shard list instead (12-17
// bytes each; find() and contains() see them), applied once the shard is
// written. So a checkpoint costs neither a pause nor a second copy of the
// index, only the changes made while it is written.
//
// Thread-safety: none, except that save_snapshot() may run on another thread
// while the owner goes on using the index.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/id.h"
#include "broker/checkpoint_file.h"

namespace outrider::broker::detail {

class scheduled_index {
 public:
  static std::uint64_t fingerprint(const id128& id) noexcept;

  scheduled_index();

  void insert(std::uint64_t fp, std::uint64_t position);
  // Removes the one entry (fp, position); returns false if absent.
  bool erase(std::uint64_t fp, std::uint64_t position);
  // Positions stored under `fp` (usually zero or one; may include spurious
  // candidates, see above).
  std::vector<std::uint64_t> find(std::uint64_t fp) const;
  bool contains(std::uint64_t fp, std::uint64_t position) const;

  // Checkpoints: the shards as they are (capacity, then every slot, empty ones
  // included, 12 bytes each), so loading is a bulk read with no hashing or
  // growth. The layout depends on home() and the probing order: changing
  // either needs a new checkpoint version. load() replaces the contents and
  // returns false on a bad shard count or capacity (the reader then holds the
  // error).
  void save(checkpoint_writer& out) const;
  bool load(checkpoint_reader& in);

  struct freeze_state;
  // The index as of freeze(), to be written once by save_snapshot(). The index
  // stays frozen shard by shard until each is written or the snapshot dropped.
  class snapshot {
   public:
    snapshot() = default;
    explicit snapshot(std::shared_ptr<freeze_state> state) : state_(std::move(state)) {}
    snapshot(snapshot&&) noexcept = default;
    snapshot& operator=(snapshot&& other) noexcept;
    ~snapshot();

   private:
    friend class scheduled_index;
    std::shared_ptr<freeze_state> state_;
  };
  // REQUIRES: no other snapshot of this index is live (one at a time).
  snapshot freeze();
  // Writes the snapshot in save()'s format; any thread. REQUIRES: the index
  // outlives the call.
  static void save_snapshot(snapshot& snap, checkpoint_writer& out);
  // Changes kept aside while frozen (for tests and metrics).
  std::size_t deferred() const noexcept { return deferred_; }

  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept;

 private:
  static constexpr unsigned shard_bits = 10;
  static constexpr std::size_t initial_capacity = 16;

  struct slot {
    std::uint32_t tag = 0;  // 0 = empty (tag_of() never returns 0)
    std::uint32_t position_low = 0;
    std::uint32_t position_high = 0;
    std::uint64_t position() const noexcept {
      return (std::uint64_t{position_high} << 32) | position_low;
    }
  };
  static_assert(sizeof(slot) == 12);
  struct shard {
    std::vector<slot> slots;  // empty or capacity >= initial_capacity
    std::size_t size = 0;
  };
  struct change {
    std::uint64_t fp;
    std::uint64_t position;
    bool insert;
  };

  static std::uint32_t tag_of(std::uint64_t fp) noexcept {
    const auto t = static_cast<std::uint32_t>(fp);
    return t == 0 ? 1 : t;
  }
  static std::size_t home(std::uint32_t tag, std::size_t capacity) noexcept {
    return static_cast<std::size_t>((std::uint64_t{tag} * capacity) >> 32);
  }
  shard& shard_of(std::uint64_t fp) noexcept { return shards_[fp >> (64 - shard_bits)]; }
  const shard& shard_of(std::uint64_t fp) const noexcept {
    return shards_[fp >> (64 - shard_bits)];
  }
  static void place(shard& s, slot entry);
  static void resize(shard& s, std::size_t capacity);

  static void insert_into(shard& s, std::uint64_t fp, std::uint64_t position);
  static bool erase_from(shard& s, std::uint64_t fp, std::uint64_t position);
  // True when shard `i` may be changed in place now (not frozen, or written);
  // applies its deferred changes first, and thaws the index once every shard
  // is written.
  bool writable(std::size_t i);
  void apply_deferred(std::size_t i);

  std::vector<shard> shards_;
  std::size_t size_ = 0;
  // While frozen: the snapshot being written and each shard's changes since.
  std::shared_ptr<freeze_state> frozen_;
  std::vector<std::vector<change>> pending_;
  std::size_t deferred_ = 0;
};

struct scheduled_index::freeze_state {
  explicit freeze_state(const scheduled_index& owner)
      : index(&owner), written(owner.shards_.size()) {}
  // Marks every shard not yet written as written (a dropped snapshot).
  void release_all();
  const scheduled_index* index;
  // Per shard: written (the owner may change it again). Release/acquire.
  std::vector<std::atomic<bool>> written;
  std::atomic<std::size_t> written_count{0};
};

}  // namespace outrider::broker::detail
