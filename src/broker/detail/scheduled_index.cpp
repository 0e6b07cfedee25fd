#include "broker/detail/scheduled_index.h"

namespace outrider::broker::detail {

std::uint64_t scheduled_index::fingerprint(const id128& id) noexcept {
  // splitmix64 finaliser over both halves: ids made in the same millisecond
  // share their high bits, so mix everything.
  std::uint64_t x = id.high ^ (id.low * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

scheduled_index::scheduled_index() : shards_(std::size_t{1} << shard_bits) {}

std::size_t scheduled_index::memory_bytes() const noexcept {
  std::size_t bytes = shards_.capacity() * sizeof(shard);
  for (const shard& s : shards_) bytes += s.slots.capacity() * sizeof(slot);
  return bytes;
}

void scheduled_index::place(shard& s, slot entry) {
  const std::size_t capacity = s.slots.size();
  std::size_t i = home(entry.tag, capacity);
  while (s.slots[i].tag != 0) i = i + 1 == capacity ? 0 : i + 1;
  s.slots[i] = entry;
}

void scheduled_index::resize(shard& s, std::size_t capacity) {
  std::vector<slot> old = std::move(s.slots);
  s.slots = std::vector<slot>();  // exact capacity, no slack
  if (capacity == 0) return;
  s.slots.resize(capacity);
  for (const slot& e : old) {
    if (e.tag != 0) place(s, e);
  }
}

void scheduled_index::insert(std::uint64_t fp, std::uint64_t position) {
  shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  if ((s.size + 1) * 8 > capacity * 7) {
    resize(s, capacity < initial_capacity ? initial_capacity : capacity + capacity / 4);
  }
  place(s, slot{tag_of(fp), static_cast<std::uint32_t>(position),
                static_cast<std::uint32_t>(position >> 32)});
  ++s.size;
  ++size_;
}

bool scheduled_index::erase(std::uint64_t fp, std::uint64_t position) {
  shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  if (capacity == 0) return false;
  const std::uint32_t tag = tag_of(fp);
  auto next = [capacity](std::size_t i) { return i + 1 == capacity ? 0 : i + 1; };
  std::size_t i = home(tag, capacity);
  while (s.slots[i].tag != 0 && !(s.slots[i].tag == tag && s.slots[i].position() == position)) {
    i = next(i);
  }
  if (s.slots[i].tag == 0) return false;
  // Backward-shift deletion: pull later entries of the cluster into the hole
  // when their home does not lie cyclically in (hole, j].
  std::size_t hole = i;
  for (std::size_t j = next(i); s.slots[j].tag != 0; j = next(j)) {
    const std::size_t h = home(s.slots[j].tag, capacity);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      s.slots[hole] = s.slots[j];
      hole = j;
    }
  }
  s.slots[hole] = slot{};
  --s.size;
  --size_;
  if (s.size * 4 < capacity && capacity > initial_capacity) {
    resize(s, s.size == 0 ? 0 : std::max(initial_capacity, s.size * 2));
  }
  return true;
}

std::vector<std::uint64_t> scheduled_index::find(std::uint64_t fp) const {
  std::vector<std::uint64_t> out;
  const shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  if (capacity == 0) return out;
  const std::uint32_t tag = tag_of(fp);
  for (std::size_t i = home(tag, capacity); s.slots[i].tag != 0;
       i = i + 1 == capacity ? 0 : i + 1) {
    if (s.slots[i].tag == tag) out.push_back(s.slots[i].position());
  }
  return out;
}

bool scheduled_index::contains(std::uint64_t fp, std::uint64_t position) const {
  const shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  if (capacity == 0) return false;
  const std::uint32_t tag = tag_of(fp);
  for (std::size_t i = home(tag, capacity); s.slots[i].tag != 0;
       i = i + 1 == capacity ? 0 : i + 1) {
    if (s.slots[i].tag == tag && s.slots[i].position() == position) return true;
  }
  return false;
}

void scheduled_index::for_each(
    const std::function<void(std::uint64_t fp, std::uint64_t position)>& fn) const {
  for (std::size_t shard_no = 0; shard_no < shards_.size(); ++shard_no) {
    const std::uint64_t high = std::uint64_t{shard_no} << (64 - shard_bits);
    for (const slot& s : shards_[shard_no].slots) {
      if (s.tag != 0) fn(high | s.tag, s.position());
    }
  }
}

}  // namespace outrider::broker::detail
