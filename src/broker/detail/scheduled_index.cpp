#include "broker/detail/scheduled_index.h"

#include <atomic>
#include <bit>
#include <fmt/core.h>

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
  for (const shard& s : shards_) bytes += s.slots ? s.slots->capacity() * sizeof(slot) : 0;
  return bytes;
}

std::vector<scheduled_index::slot>& scheduled_index::own(shard& s) {
  if (!s.slots) {
    s.slots = std::make_shared<std::vector<slot>>();
  } else if (s.slots.use_count() > 1) {
    s.slots = std::make_shared<std::vector<slot>>(*s.slots);  // a snapshot still reads it
  } else {
    // A snapshot on another thread may just have released it: its reads
    // happen before our writes (its release decrement, this acquire fence).
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  return *s.slots;
}

void scheduled_index::place(std::vector<slot>& slots, slot entry) {
  const std::size_t capacity = slots.size();
  std::size_t i = home(entry.tag, capacity);
  while (slots[i].tag != 0) i = i + 1 == capacity ? 0 : i + 1;
  slots[i] = entry;
}

void scheduled_index::resize(shard& s, std::size_t capacity) {
  // A fresh vector: never writes into slots a snapshot shares.
  std::shared_ptr<std::vector<slot>> old = std::move(s.slots);
  s.slots.reset();
  if (capacity == 0) return;
  auto slots = std::make_shared<std::vector<slot>>(capacity);  // exact capacity, no slack
  if (old) {
    for (const slot& e : *old) {
      if (e.tag != 0) place(*slots, e);
    }
  }
  s.slots = std::move(slots);
}

void scheduled_index::insert(std::uint64_t fp, std::uint64_t position) {
  shard& s = shard_of(fp);
  const std::size_t capacity = s.capacity();
  if ((s.size + 1) * 8 > capacity * 7) {
    resize(s, capacity < initial_capacity ? initial_capacity : capacity + capacity / 4);
  }
  place(own(s), slot{tag_of(fp), static_cast<std::uint32_t>(position),
                     static_cast<std::uint32_t>(position >> 32)});
  ++s.size;
  ++size_;
}

bool scheduled_index::erase(std::uint64_t fp, std::uint64_t position) {
  shard& s = shard_of(fp);
  const std::size_t capacity = s.capacity();
  if (capacity == 0) return false;
  const std::uint32_t tag = tag_of(fp);
  auto next = [capacity](std::size_t i) { return i + 1 == capacity ? 0 : i + 1; };
  std::size_t i = home(tag, capacity);
  {
    const std::vector<slot>& slots = *s.slots;
    while (slots[i].tag != 0 && !(slots[i].tag == tag && slots[i].position() == position)) {
      i = next(i);
    }
    if (slots[i].tag == 0) return false;
  }
  std::vector<slot>& slots = own(s);
  // Backward-shift deletion: pull later entries of the cluster into the hole
  // when their home does not lie cyclically in (hole, j].
  std::size_t hole = i;
  for (std::size_t j = next(i); slots[j].tag != 0; j = next(j)) {
    const std::size_t h = home(slots[j].tag, capacity);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      slots[hole] = slots[j];
      hole = j;
    }
  }
  slots[hole] = slot{};
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
  const std::size_t capacity = s.capacity();
  if (capacity == 0) return out;
  const std::vector<slot>& slots = *s.slots;
  const std::uint32_t tag = tag_of(fp);
  for (std::size_t i = home(tag, capacity); slots[i].tag != 0; i = i + 1 == capacity ? 0 : i + 1) {
    if (slots[i].tag == tag) out.push_back(slots[i].position());
  }
  return out;
}

bool scheduled_index::contains(std::uint64_t fp, std::uint64_t position) const {
  const shard& s = shard_of(fp);
  const std::size_t capacity = s.capacity();
  if (capacity == 0) return false;
  const std::vector<slot>& slots = *s.slots;
  const std::uint32_t tag = tag_of(fp);
  for (std::size_t i = home(tag, capacity); slots[i].tag != 0; i = i + 1 == capacity ? 0 : i + 1) {
    if (slots[i].tag == tag && slots[i].position() == position) return true;
  }
  return false;
}

scheduled_index::snapshot scheduled_index::take_snapshot() const {
  snapshot snap;
  snap.reserve(shards_.size());
  for (const shard& s : shards_) snap.emplace_back(s.slots);
  return snap;
}

void scheduled_index::save_snapshot(snapshot& snap, checkpoint_writer& out) {
  static_assert(std::endian::native == std::endian::little, "slots are written as they are");
  out.put_u32(static_cast<std::uint32_t>(snap.size()));
  for (auto& shard_slots : snap) {
    const std::size_t n = shard_slots ? shard_slots->size() : 0;
    out.put_u64(n);
    if (n != 0) out.put_bytes(shard_slots->data(), n * sizeof(slot));
    shard_slots.reset();  // frees a copy-on-write copy as soon as it is written
  }
}

void scheduled_index::save(checkpoint_writer& out) const {
  auto snap = take_snapshot();
  save_snapshot(snap, out);
}

bool scheduled_index::load(checkpoint_reader& in) {
  constexpr std::uint64_t max_capacity = std::uint64_t{1} << 32;
  std::uint32_t shard_count = 0;
  if (!in.get_u32(shard_count)) return false;
  if (shard_count != shards_.size()) {
    in.corrupt(fmt::format("{} index shards, expected {}", shard_count, shards_.size()));
    return false;
  }
  size_ = 0;
  for (shard& s : shards_) {
    std::uint64_t capacity = 0;
    if (!in.get_u64(capacity)) return false;
    if (capacity > max_capacity || (capacity != 0 && capacity < initial_capacity)) {
      in.corrupt(fmt::format("an index shard of capacity {}", capacity));
      return false;
    }
    s.size = 0;
    s.slots.reset();
    if (capacity == 0) continue;
    auto slots = std::make_shared<std::vector<slot>>(capacity);
    if (!in.get_bytes(slots->data(), capacity * sizeof(slot))) return false;
    for (const slot& e : *slots) s.size += e.tag != 0 ? 1 : 0;
    if (s.size * 8 > capacity * 7) {
      in.corrupt("an index shard fuller than its load limit");
      return false;
    }
    s.slots = std::move(slots);
    size_ += s.size;
  }
  return true;
}

}  // namespace outrider::broker::detail
