// scheduler: the index of messages coming due, by due time.
//
// It maps (due time -> opaque 64-bit ref) and hands back refs whose due time
// has passed. It is an index, not the source of truth: the broker's log holds
// the messages; a ref is typically a log position. The scheduler never looks at
// a clock: callers pass `now` (wall time, nanoseconds since the Unix epoch), so
// a 7-day horizon is testable in microseconds and nothing fires early.
//
// Cancellation is lazy: the owner remembers what it cancelled and drops such
// refs when they come due, so the index stays a compact (due, ref) store (tens
// of bytes per entry in memory near the horizon, on disk beyond it).
//
// Thread-safety: none; one owner thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"

namespace outrider::timing {

struct due_entry {
  std::int64_t due_ns = 0;  // wall time, ns since the Unix epoch
  std::uint64_t ref = 0;    // opaque to the scheduler

  friend bool operator==(const due_entry&, const due_entry&) = default;
};

class scheduler {
 public:
  virtual ~scheduler() = default;

  // Adds an entry. Entries already due are returned by the next pop_due().
  // Errors: io_error/disk_full from a disk-backed implementation (nothing added).
  virtual status insert(std::int64_t due_ns, std::uint64_t ref) = 0;

  // Moves up to `max` entries with due_ns <= now_ns into `out` (appending), in
  // ascending due order; returns how many were moved. Never returns an entry
  // whose due_ns > now_ns.
  virtual result<std::size_t> pop_due(std::int64_t now_ns, std::vector<due_entry>& out,
                                      std::size_t max) = 0;

  // Earliest due time of any entry (the one timer to arm), if any. It may be
  // earlier than the true earliest entry (never later), e.g. the start of an
  // on-disk bucket, so callers re-check with pop_due() when it passes.
  virtual std::optional<std::int64_t> next_due() const = 0;

  // Entries held (including lazily cancelled ones).
  virtual std::uint64_t size() const = 0;
};

}  // namespace outrider::timing
