#include "broker/log_journal.h"

#include <algorithm>
#include <span>

namespace outrider::broker {
namespace {

journal_record to_journal_record(storage::record&& r) {
  return journal_record{
      r.pos, r.type,
      std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size())};
}

}  // namespace

result<std::uint64_t> log_journal::append(std::uint8_t type, std::string_view payload) {
  return log_.append(type, std::as_bytes(std::span<const char>(payload.data(), payload.size())));
}

result<journal_record> log_journal::read(std::uint64_t position) {
  auto r = log_.read(position);
  if (!r) return std::move(r).error();
  return to_journal_record(std::move(*r));
}

status log_journal::replay(std::uint64_t from, const visitor& fn) {
  auto reader = log_.read_from(std::max<std::uint64_t>(from, log_.begin()));
  if (!reader) return std::move(reader).error();
  for (;;) {
    auto next = reader->next();
    if (!next) return std::move(next).error();
    if (!next->has_value()) return ok_status();
    OUTRIDER_TRY(fn(to_journal_record(std::move(**next))));
  }
}

}  // namespace outrider::broker
