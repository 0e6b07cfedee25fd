// timing_wheel: a clock-free hierarchical timing wheel over compact (due_ns, ref) entries.
//
// Time is cut into ticks of `tick_ns` (default 1 ms). Tick numbers are 64-bit and split into
// `level_count` digits of `slot_bits` bits; an entry lives at the level of the highest digit in
// which its tick differs from the current tick, in the slot named by that digit (the Linux/Varghese
// hierarchical hashed wheel). When the current tick enters a higher-level slot's range, that slot
// is cascaded down. Each slot is a plain vector of 16-byte entries: no per-entry heap node.
//
// Entries whose tick has been reached move to a small min-heap (the "ready" set), ordered by
// (due_ns, ref); pop_due() takes from it only entries with due_ns <= now, so nothing fires early
// even within the current tick. Entries due in the past or exactly now are inserted straight into
// the ready set and come out of the next pop_due().
//
// advance() jumps from one non-empty slot to the next using per-level occupancy bitmaps, so a gap
// of 7 days costs O(non-empty slots), never O(ticks).
//
// Memory: 16 bytes per entry plus vector growth slack, plus a fixed ~50 KB of slot headers.
// Thread-safety: none; one owner thread (scheduler contract).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "timing/scheduler.h"

namespace outrider::timing {

struct timing_wheel_options {
  // Length of one tick. Entries within one tick are ordered by due_ns on expiry.
  // REQUIRES: > 0.
  std::int64_t tick_ns = 1'000'000;
  // The wheel's initial current time. Entries are placed relative to it, so starting near the
  // real time avoids cascading the first entries through every level.
  std::int64_t start_ns = 0;
};

class timing_wheel final : public scheduler {
 public:
  static constexpr int slot_bits = 8;
  static constexpr int slots_per_level = 1 << slot_bits;
  static constexpr int level_count = 64 / slot_bits;  // covers every 64-bit tick number

  timing_wheel() : timing_wheel(timing_wheel_options{}) {}
  explicit timing_wheel(timing_wheel_options options);

  // Never fails.
  status insert(std::int64_t due_ns, std::uint64_t ref) override;
  // Same as insert(), for callers that want no status.
  void add(std::int64_t due_ns, std::uint64_t ref);

  // advance(now_ns), then moves up to `max` ready entries with due_ns <= now_ns to `out` in
  // ascending (due_ns, ref) order. Never fails.
  result<std::size_t> pop_due(std::int64_t now_ns, std::vector<due_entry>& out,
                              std::size_t max) override;

  // The earliest due time held, or a lower bound of it: exact when an entry has reached the ready
  // set, otherwise the start of the earliest non-empty slot's range.
  std::optional<std::int64_t> next_due() const override;

  // Exact earliest due time held (scans at most one slot). For checkpoints, not hot paths.
  std::optional<std::int64_t> earliest_due_exact() const;

  std::uint64_t size() const override { return size_; }

  // Calls `fn` for every entry held, in no particular order (for snapshots; not hot paths).
  void for_each(const std::function<void(const due_entry&)>& fn) const;

  // Moves every entry whose tick is <= now's tick into the ready set. A `now_ns` earlier than a
  // previous one is a no-op (the wheel never moves backwards).
  void advance(std::int64_t now_ns);

 private:
  using slot = std::vector<due_entry>;

  std::uint64_t tick_of(std::int64_t due_ns) const;
  // Places an entry relative to current_tick_ (into a slot or the ready set).
  void place(const due_entry& entry);
  void push_ready(const due_entry& entry);
  // The tick at which the earliest occupied slot must be processed and its level, if any slot is
  // occupied.
  bool next_event(std::uint64_t& event_tick, int& level) const;
  int first_occupied(int level) const;
  void set_bit(int level, int index);
  void clear_bit(int level, int index);

  std::int64_t tick_ns_;
  // Every entry in a slot has tick > current_tick_; every ready entry has tick <= current_tick_.
  std::uint64_t current_tick_;
  std::array<std::array<slot, slots_per_level>, level_count> slots_;
  std::array<std::array<std::uint64_t, slots_per_level / 64>, level_count> occupied_{};
  std::vector<due_entry> ready_;  // min-heap by (due_ns, ref)
  std::vector<due_entry> scratch_;
  std::uint64_t size_ = 0;
};

}  // namespace outrider::timing
