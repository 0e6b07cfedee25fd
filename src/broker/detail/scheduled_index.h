// scheduled_index: which message ids are scheduled, and where their publish
// record is, in 16 bytes a slot.
//
// A flat open-addressing multimap from a 64-bit fingerprint of the message id
// to the journal position of its publish record (linear probing, backward-shift
// deletion, load factor between 3/8 and 3/4, so 21 to 43 bytes per entry). Fingerprints may
// collide: callers verify a candidate by reading the record at its position.
// This is what keeps a far-future message at tens of bytes of memory: the id
// itself lives only in the journal.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <vector>

#include "base/id.h"

namespace outrider::broker::detail {

class scheduled_index {
 public:
  static std::uint64_t fingerprint(const id128& id) noexcept;

  void insert(std::uint64_t fp, std::uint64_t position);
  // Removes the one entry (fp, position); returns false if absent.
  bool erase(std::uint64_t fp, std::uint64_t position);
  // Positions stored under `fp` (usually zero or one).
  std::vector<std::uint64_t> find(std::uint64_t fp) const;
  bool contains(std::uint64_t fp, std::uint64_t position) const;

  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(slot); }

 private:
  struct slot {
    std::uint64_t fp = 0;  // 0 = empty (fingerprint() never returns 0)
    std::uint64_t position = 0;
  };
  static constexpr std::size_t initial_capacity = 64;

  std::size_t home(std::uint64_t fp) const noexcept { return fp & (slots_.size() - 1); }
  void grow();

  std::vector<slot> slots_;  // size is 0 or a power of two
  std::size_t size_ = 0;
};

}  // namespace outrider::broker::detail
