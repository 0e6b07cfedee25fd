#include "broker/journal.h"

#include <algorithm>
#include <fmt/core.h>

namespace outrider::broker {

result<std::uint64_t> mem_journal::append(std::uint8_t type, std::string_view payload) {
  if (fail_appends_) return error(errc::disk_full, "mem_journal: appends disabled for test");
  const std::uint64_t position = next_position_;
  records_.push_back(journal_record{position, type, std::string(payload)});
  next_position_ += header_bytes + payload.size();
  return position;
}

result<journal_record> mem_journal::read(std::uint64_t position) {
  auto it =
      std::lower_bound(records_.begin(), records_.end(), position,
                       [](const journal_record& r, std::uint64_t p) { return r.position < p; });
  if (it == records_.end() || it->position != position) {
    return error(errc::not_found, fmt::format("mem_journal: no record at position {}", position));
  }
  return *it;
}

status mem_journal::replay(std::uint64_t from, const visitor& fn) {
  auto it =
      std::lower_bound(records_.begin(), records_.end(), from,
                       [](const journal_record& r, std::uint64_t p) { return r.position < p; });
  for (; it != records_.end(); ++it) OUTRIDER_TRY(fn(*it));
  return ok_status();
}

void mem_journal::remove_before(std::uint64_t position) {
  auto it =
      std::lower_bound(records_.begin(), records_.end(), position,
                       [](const journal_record& r, std::uint64_t p) { return r.position < p; });
  records_.erase(records_.begin(), it);
}

}  // namespace outrider::broker
