// journal: the append-only record store the broker engine writes to and
// recovers from.
//
// The engine appends one record per state change (publish, ack, nack, ...) and
// reads publish records back by position when a scheduled message comes due or
// a delivery needs its body. Durability is the owner's business: append()
// returns a position as soon as the record is buffered; the owner confirms a
// publish to its client only once the journal reports it durable up to that
// position (group commit: many appends, one sync).
//
// Positions are strictly increasing in append order and comparable across the
// journal's life; they are byte-like offsets (the engine groups them into
// 2^reclaim_bucket_shift-sized buckets to track what is still referenced).
//
// Implementations: mem_journal (here; tests), log_journal (adapter over
// storage::log).
//
// Thread-safety: none; the engine's thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace outrider::broker {

struct journal_record {
  std::uint64_t position = 0;
  std::uint8_t type = 0;
  std::string payload;
};

class journal {
 public:
  // Called once per record in position order; an error stops the replay and
  // is returned by replay().
  using visitor = std::function<status(const journal_record&)>;

  virtual ~journal() = default;

  // Appends a record; returns its position.
  // Errors: disk_full/resource_exhausted/io_error (nothing appended).
  virtual result<std::uint64_t> append(std::uint8_t type, std::string_view payload) = 0;
  // The same, for a payload the caller no longer needs: a journal that keeps
  // records in memory may take it over instead of copying it.
  virtual result<std::uint64_t> append_owned(std::uint8_t type, std::string&& payload) {
    return append(type, payload);
  }

  // The record at `position` (a value append() returned).
  // Errors: not_found (no record starts there, or it was reclaimed),
  // data_corruption, io_error.
  virtual result<journal_record> read(std::uint64_t position) = 0;

  // Visits every record at or after `from`, in order.
  virtual status replay(std::uint64_t from, const visitor& fn) = 0;
};

// In-memory journal for tests. Positions are byte offsets as if each record
// took header_bytes + payload size, starting at 0. Records before the
// reclamation point are dropped by remove_before().
class mem_journal final : public journal {
 public:
  static constexpr std::uint64_t header_bytes = 16;

  result<std::uint64_t> append(std::uint8_t type, std::string_view payload) override;
  result<journal_record> read(std::uint64_t position) override;
  status replay(std::uint64_t from, const visitor& fn) override;

  // Drops every record whose position is < `position` (segment reclamation).
  void remove_before(std::uint64_t position);
  // Makes every later append fail with disk_full (true) or succeed (false).
  void fail_appends_for_test(bool fail) { fail_appends_ = fail; }

  std::size_t record_count() const noexcept { return records_.size(); }
  std::uint64_t end_position() const noexcept { return next_position_; }

 private:
  std::vector<journal_record> records_;  // ascending positions
  std::uint64_t next_position_ = 0;
  bool fail_appends_ = false;
};

}  // namespace outrider::broker
