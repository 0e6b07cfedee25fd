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

void scheduled_index::grow() {
  std::vector<slot> old = std::move(slots_);
  slots_.assign(old.empty() ? initial_capacity : old.size() * 2, slot{});
  size_ = 0;
  for (const slot& s : old) {
    if (s.fp != 0) insert(s.fp, s.position);
  }
}

void scheduled_index::insert(std::uint64_t fp, std::uint64_t position) {
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(fp);
  while (slots_[i].fp != 0) i = (i + 1) & mask;
  slots_[i] = slot{fp, position};
  ++size_;
}

bool scheduled_index::erase(std::uint64_t fp, std::uint64_t position) {
  if (slots_.empty()) return false;
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(fp);
  while (slots_[i].fp != 0 && !(slots_[i].fp == fp && slots_[i].position == position)) {
    i = (i + 1) & mask;
  }
  if (slots_[i].fp == 0) return false;
  // Backward-shift deletion: pull later entries of the cluster into the hole
  // when their home does not lie cyclically in (hole, j].
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; slots_[j].fp != 0; j = (j + 1) & mask) {
    const std::size_t h = home(slots_[j].fp);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = slot{};
  --size_;
  return true;
}

std::vector<std::uint64_t> scheduled_index::find(std::uint64_t fp) const {
  std::vector<std::uint64_t> out;
  if (slots_.empty()) return out;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(fp); slots_[i].fp != 0; i = (i + 1) & mask) {
    if (slots_[i].fp == fp) out.push_back(slots_[i].position);
  }
  return out;
}

bool scheduled_index::contains(std::uint64_t fp, std::uint64_t position) const {
  if (slots_.empty()) return false;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(fp); slots_[i].fp != 0; i = (i + 1) & mask) {
    if (slots_[i].fp == fp && slots_[i].position == position) return true;
  }
  return false;
}

}  // namespace outrider::broker::detail
