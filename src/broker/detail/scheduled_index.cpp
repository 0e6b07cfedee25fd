#include "broker/detail/scheduled_index.h"

#include <algorithm>
#include <bit>
#include <fmt/core.h>

#include "base/assert.h"

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

void scheduled_index::insert_into(shard& s, std::uint64_t fp, std::uint64_t position) {
  const std::size_t capacity = s.slots.size();
  if ((s.size + 1) * 8 > capacity * 7) {
    resize(s, capacity < initial_capacity ? initial_capacity : capacity + capacity / 4);
  }
  place(s, slot{tag_of(fp), static_cast<std::uint32_t>(position),
                static_cast<std::uint32_t>(position >> 32)});
  ++s.size;
}

bool scheduled_index::erase_from(shard& s, std::uint64_t fp, std::uint64_t position) {
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
  if (s.size * 4 < capacity && capacity > initial_capacity) {
    resize(s, s.size == 0 ? 0 : std::max(initial_capacity, s.size * 2));
  }
  return true;
}

void scheduled_index::insert(std::uint64_t fp, std::uint64_t position) {
  const std::size_t i = fp >> (64 - shard_bits);
  ++size_;
  if (writable(i)) return insert_into(shards_[i], fp, position);
  pending_[i].push_back({fp, position, true});
  ++deferred_;
}

bool scheduled_index::erase(std::uint64_t fp, std::uint64_t position) {
  const std::size_t i = fp >> (64 - shard_bits);
  if (writable(i)) {
    if (!erase_from(shards_[i], fp, position)) return false;
    --size_;
    return true;
  }
  if (!contains(fp, position)) return false;
  pending_[i].push_back({fp, position, false});
  ++deferred_;
  --size_;
  return true;
}

bool scheduled_index::writable(std::size_t i) {
  if (!frozen_) return true;
  if (frozen_->written_count.load(std::memory_order_acquire) == shards_.size()) {
    // Every shard is written: thaw the whole index.
    for (std::size_t j = 0; j < shards_.size(); ++j) apply_deferred(j);
    frozen_.reset();
    pending_ = {};
    return true;
  }
  if (!frozen_->written[i].load(std::memory_order_acquire)) return false;
  apply_deferred(i);
  return true;
}

void scheduled_index::apply_deferred(std::size_t i) {
  if (pending_.empty() || pending_[i].empty()) return;
  for (const change& c : pending_[i]) {
    if (c.insert) {
      insert_into(shards_[i], c.fp, c.position);
    } else {
      erase_from(shards_[i], c.fp, c.position);
    }
  }
  deferred_ -= pending_[i].size();
  pending_[i] = {};
}

std::vector<std::uint64_t> scheduled_index::find(std::uint64_t fp) const {
  std::vector<std::uint64_t> out;
  const shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  const std::uint32_t tag = tag_of(fp);
  if (capacity != 0) {
    for (std::size_t i = home(tag, capacity); s.slots[i].tag != 0;
         i = i + 1 == capacity ? 0 : i + 1) {
      if (s.slots[i].tag == tag) out.push_back(s.slots[i].position());
    }
  }
  if (!pending_.empty()) {
    for (const change& c : pending_[fp >> (64 - shard_bits)]) {
      if (tag_of(c.fp) != tag) continue;
      if (c.insert) {
        out.push_back(c.position);
      } else if (auto it = std::find(out.begin(), out.end(), c.position); it != out.end()) {
        out.erase(it);
      }
    }
  }
  return out;
}

bool scheduled_index::contains(std::uint64_t fp, std::uint64_t position) const {
  const shard& s = shard_of(fp);
  const std::size_t capacity = s.slots.size();
  const std::uint32_t tag = tag_of(fp);
  int count = 0;
  if (capacity != 0) {
    for (std::size_t i = home(tag, capacity); s.slots[i].tag != 0;
         i = i + 1 == capacity ? 0 : i + 1) {
      if (s.slots[i].tag == tag && s.slots[i].position() == position) ++count;
    }
  }
  if (!pending_.empty()) {
    for (const change& c : pending_[fp >> (64 - shard_bits)]) {
      if (tag_of(c.fp) == tag && c.position == position) count += c.insert ? 1 : -1;
    }
  }
  return count > 0;
}

scheduled_index::snapshot scheduled_index::freeze() {
  OUTRIDER_ASSERT(!frozen_ || frozen_->written_count.load() == shards_.size(),
                  "scheduled_index: a snapshot is still being written");
  if (frozen_) writable(0);  // thaws
  frozen_ = std::make_shared<freeze_state>(*this);
  pending_.assign(shards_.size(), {});
  return snapshot(frozen_);
}

void scheduled_index::freeze_state::release_all() {
  for (auto& w : written) {
    if (!w.exchange(true, std::memory_order_acq_rel)) {
      written_count.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

scheduled_index::snapshot& scheduled_index::snapshot::operator=(snapshot&& other) noexcept {
  if (this != &other) {
    if (state_) state_->release_all();
    state_ = std::move(other.state_);
  }
  return *this;
}

scheduled_index::snapshot::~snapshot() {
  // Written or dropped: every shard may be changed again.
  if (state_) state_->release_all();
}

void scheduled_index::save_snapshot(snapshot& snap, checkpoint_writer& out) {
  static_assert(std::endian::native == std::endian::little, "slots are written as they are");
  OUTRIDER_ASSERT(snap.state_ != nullptr, "scheduled_index: an empty snapshot");
  freeze_state& state = *snap.state_;
  const auto& shards = state.index->shards_;
  out.put_u32(static_cast<std::uint32_t>(shards.size()));
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const shard& s = shards[i];
    out.put_u64(s.slots.size());
    out.put_bytes(s.slots.data(), s.slots.size() * sizeof(slot));
    state.written[i].store(true, std::memory_order_release);
    state.written_count.fetch_add(1, std::memory_order_acq_rel);
  }
  snap.state_.reset();
}

void scheduled_index::save(checkpoint_writer& out) const {
  static_assert(std::endian::native == std::endian::little, "slots are written as they are");
  out.put_u32(static_cast<std::uint32_t>(shards_.size()));
  for (const shard& s : shards_) {
    out.put_u64(s.slots.size());
    out.put_bytes(s.slots.data(), s.slots.size() * sizeof(slot));
  }
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
    s.slots = std::vector<slot>(capacity);
    if (!in.get_bytes(s.slots.data(), capacity * sizeof(slot))) return false;
    s.size = 0;
    for (const slot& e : s.slots) s.size += e.tag != 0 ? 1 : 0;
    if (s.size * 8 > capacity * 7) {
      in.corrupt("an index shard fuller than its load limit");
      return false;
    }
    size_ += s.size;
  }
  return true;
}

}  // namespace outrider::broker::detail
