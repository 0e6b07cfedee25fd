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
// Snapshots: snapshot() shares every shard's slots with the caller in O(shards)
// (copy-on-write: the next insert or erase into a shared shard copies that one
// shard first), so a checkpoint can write a consistent image on another thread
// while the owner keeps changing the index.
//
// Thread-safety: none, except that a snapshot may be read on any thread while
// the owner changes the index.
#pragma once

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

  struct slot {
    std::uint32_t tag = 0;  // 0 = empty (tag_of() never returns 0)
    std::uint32_t position_low = 0;
    std::uint32_t position_high = 0;
    std::uint64_t position() const noexcept {
      return (std::uint64_t{position_high} << 32) | position_low;
    }
  };
  static_assert(sizeof(slot) == 12);
  // The index's contents at one moment, for save_snapshot() on any thread.
  // Holding one costs nothing until the index changes: each shard changed
  // afterwards is copied once (the copy-on-write memory, at most the index's
  // size, is freed as save_snapshot() writes each shard out).
  using snapshot = std::vector<std::shared_ptr<const std::vector<slot>>>;
  snapshot take_snapshot() const;
  // Writes `snap` in save()'s format, releasing each shard once written.
  static void save_snapshot(snapshot& snap, checkpoint_writer& out);

  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept;

 private:
  static constexpr unsigned shard_bits = 10;
  static constexpr std::size_t initial_capacity = 16;

  struct shard {
    // Null, empty or capacity >= initial_capacity. Shared with snapshots:
    // change it only through own().
    std::shared_ptr<std::vector<slot>> slots;
    std::size_t size = 0;
    std::size_t capacity() const noexcept { return slots ? slots->size() : 0; }
  };
  // The shard's slots for writing: copied first if a snapshot shares them.
  static std::vector<slot>& own(shard& s);

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
  static void place(std::vector<slot>& slots, slot entry);
  static void resize(shard& s, std::size_t capacity);

  std::vector<shard> shards_;
  std::size_t size_ = 0;
};

}  // namespace outrider::broker::detail
