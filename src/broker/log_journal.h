// log_journal: the broker journal over the durable storage::log.
//
// A thin adapter: append/read/replay map one to one onto storage::log, whose
// records are checksummed (CRC-32C) and recovered (torn tails truncated) by the
// log itself. Durability stays with the owner: call log().sync() for group
// commit and confirm publishes up to the position it returns.
//
// Thread-safety: the log's (append, read and replay on the owner's thread).
#pragma once

#include "broker/journal.h"
#include "storage/log.h"

namespace outrider::broker {

class log_journal final : public journal {
 public:
  // REQUIRES: `log` outlives this object.
  explicit log_journal(storage::log& log) : log_(log) {}

  result<std::uint64_t> append(std::uint8_t type, std::string_view payload) override;
  result<journal_record> read(std::uint64_t position) override;
  // Replays from max(from, log().begin()): reclaimed positions are skipped.
  status replay(std::uint64_t from, const visitor& fn) override;

  storage::log& log() noexcept { return log_; }

 private:
  storage::log& log_;
};

}  // namespace outrider::broker
