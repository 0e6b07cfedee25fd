// cached_journal: a journal wrapper that keeps the most recently appended
// records of chosen types in memory, so reading a just-published message back
// for its delivery costs no system call and no checksum pass. Everything else
// (and anything evicted) is read from the wrapped journal.
//
// An optional `admit` predicate keeps records out of the cache (the broker
// skips scheduled publishes: they are read back only when they come due, which
// may be days later, so caching them would only evict what is needed next).
//
// The cache holds at most `budget_bytes` of payload, evicting oldest-appended
// first (a broker delivers roughly in publish order, so the records it needs
// next are the newest ones). It is a cache of bytes the wrapped journal also
// has: losing it never loses data.
//
// Thread-safety: none (the journal's owner thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <unordered_map>

#include "broker/journal.h"

namespace outrider::broker {

class cached_journal final : public journal {
 public:
  // REQUIRES: `inner` outlives this object.
  // Records of `cached_types` are cached unless `admit` (when set) returns false.
  using admit_fn = std::function<bool(std::uint8_t type, std::string_view payload)>;
  cached_journal(journal& inner, std::size_t budget_bytes,
                 std::initializer_list<std::uint8_t> cached_types, admit_fn admit = nullptr);

  result<std::uint64_t> append(std::uint8_t type, std::string_view payload) override;
  // Caches the payload itself (no copy) when it is admitted.
  result<std::uint64_t> append_owned(std::uint8_t type, std::string&& payload) override;
  result<journal_record> read(std::uint64_t position) override;
  status replay(std::uint64_t from, const visitor& fn) override { return inner_.replay(from, fn); }

  std::size_t cached_records() const noexcept { return entries_.size(); }
  std::size_t cached_bytes() const noexcept { return bytes_; }
  std::uint64_t hits() const noexcept { return hits_; }
  std::uint64_t misses() const noexcept { return misses_; }

 private:
  struct entry {
    std::uint8_t type;
    std::string payload;
  };
  bool admitted(std::uint8_t type, std::string_view payload) const;
  void keep(std::uint64_t position, std::uint8_t type, std::string payload);
  void evict_to(std::size_t budget);

  journal& inner_;
  std::size_t budget_;
  std::uint32_t type_mask_ = 0;  // bit per record type < 32
  admit_fn admit_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::deque<std::uint64_t> order_;  // positions, oldest first
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace outrider::broker
