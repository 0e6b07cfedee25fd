#include "timing/timing_wheel.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "base/assert.h"

namespace outrider::timing {
namespace {

constexpr std::uint64_t slot_mask = timing_wheel::slots_per_level - 1;

// Heap order for a min-heap with std::push_heap/pop_heap: "a comes after b".
bool later(const due_entry& a, const due_entry& b) {
  return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.ref > b.ref;
}

}  // namespace

timing_wheel::timing_wheel(timing_wheel_options options) : tick_ns_(options.tick_ns) {
  OUTRIDER_ASSERT(tick_ns_ > 0, "timing_wheel: tick_ns must be positive");
  current_tick_ = tick_of(options.start_ns);
}

std::uint64_t timing_wheel::tick_of(std::int64_t due_ns) const {
  return due_ns <= 0 ? 0 : static_cast<std::uint64_t>(due_ns / tick_ns_);
}

status timing_wheel::insert(std::int64_t due_ns, std::uint64_t ref) {
  add(due_ns, ref);
  return ok_status();
}

void timing_wheel::for_each(const std::function<void(const due_entry&)>& fn) const {
  for (const auto& level : slots_) {
    for (const slot& s : level) {
      for (const due_entry& e : s) fn(e);
    }
  }
  for (const due_entry& e : ready_) fn(e);
}

void timing_wheel::add(std::int64_t due_ns, std::uint64_t ref) {
  place(due_entry{due_ns, ref});
  ++size_;
}

void timing_wheel::push_ready(const due_entry& entry) {
  ready_.push_back(entry);
  std::push_heap(ready_.begin(), ready_.end(), later);
}

void timing_wheel::place(const due_entry& entry) {
  const std::uint64_t tick = tick_of(entry.due_ns);
  if (tick <= current_tick_) {
    push_ready(entry);
    return;
  }
  const int highest_bit = 63 - std::countl_zero(tick ^ current_tick_);
  const int level = highest_bit / slot_bits;
  const int index = static_cast<int>((tick >> (level * slot_bits)) & slot_mask);
  slots_[level][index].push_back(entry);
  set_bit(level, index);
}

void timing_wheel::set_bit(int level, int index) {
  occupied_[level][index / 64] |= std::uint64_t{1} << (index % 64);
}

void timing_wheel::clear_bit(int level, int index) {
  occupied_[level][index / 64] &= ~(std::uint64_t{1} << (index % 64));
}

int timing_wheel::first_occupied(int level) const {
  for (int word = 0; word < slots_per_level / 64; ++word) {
    if (const std::uint64_t bits = occupied_[level][word]; bits != 0) {
      return word * 64 + std::countr_zero(bits);
    }
  }
  return -1;
}

// Every occupied slot's digit is above the current tick's digit at its level, and every lower
// level's range ends before a higher level's next slot begins, so the lowest occupied level holds
// the earliest event.
bool timing_wheel::next_event(std::uint64_t& event_tick, int& level) const {
  for (int l = 0; l < level_count; ++l) {
    const int index = first_occupied(l);
    if (index < 0) continue;
    const int upper_shift = (l + 1) * slot_bits;
    const std::uint64_t upper =
        upper_shift >= 64 ? 0 : (current_tick_ >> upper_shift) << upper_shift;
    event_tick = upper | (static_cast<std::uint64_t>(index) << (l * slot_bits));
    level = l;
    return true;
  }
  return false;
}

void timing_wheel::advance(std::int64_t now_ns) {
  const std::uint64_t target = tick_of(now_ns);
  while (current_tick_ < target) {
    std::uint64_t event_tick = 0;
    int level = 0;
    if (!next_event(event_tick, level) || event_tick > target) {
      current_tick_ = target;  // no slot boundary crossed: jump in O(1)
      return;
    }
    current_tick_ = event_tick;
    const int index = static_cast<int>((event_tick >> (level * slot_bits)) & slot_mask);
    slot taken = std::move(slots_[level][index]);
    slots_[level][index] = slot{};
    clear_bit(level, index);
    if (level == 0 && ready_.empty()) {
      ready_ = std::move(taken);
      std::make_heap(ready_.begin(), ready_.end(), later);
      continue;
    }
    for (const due_entry& entry : taken) place(entry);
  }
}

result<std::size_t> timing_wheel::pop_due(std::int64_t now_ns, std::vector<due_entry>& out,
                                          std::size_t max) {
  advance(now_ns);
  std::size_t moved = 0;
  while (moved < max && !ready_.empty() && ready_.front().due_ns <= now_ns) {
    std::pop_heap(ready_.begin(), ready_.end(), later);
    out.push_back(ready_.back());
    ready_.pop_back();
    ++moved;
  }
  size_ -= moved;
  if (ready_.empty() && ready_.capacity() > 0) ready_ = std::vector<due_entry>{};
  return moved;
}

std::optional<std::int64_t> timing_wheel::next_due() const {
  if (!ready_.empty()) return ready_.front().due_ns;
  std::uint64_t event_tick = 0;
  int level = 0;
  if (!next_event(event_tick, level)) return std::nullopt;
  // event_tick <= some entry's tick = due_ns / tick_ns_, so the product cannot overflow.
  return static_cast<std::int64_t>(event_tick) * tick_ns_;
}

std::optional<std::int64_t> timing_wheel::earliest_due_exact() const {
  if (!ready_.empty()) return ready_.front().due_ns;
  std::uint64_t event_tick = 0;
  int level = 0;
  if (!next_event(event_tick, level)) return std::nullopt;
  const int index = static_cast<int>((event_tick >> (level * slot_bits)) & slot_mask);
  const slot& earliest = slots_[level][index];
  OUTRIDER_ASSERT(!earliest.empty(), "timing_wheel: occupied bit set on an empty slot");
  return std::min_element(
             earliest.begin(), earliest.end(),
             [](const due_entry& a, const due_entry& b) { return a.due_ns < b.due_ns; })
      ->due_ns;
}

}  // namespace outrider::timing
