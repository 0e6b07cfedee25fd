#include "broker/cached_journal.h"

namespace outrider::broker {

cached_journal::cached_journal(journal& inner, std::size_t budget_bytes,
                               std::initializer_list<std::uint8_t> cached_types, admit_fn admit)
    : inner_(inner), budget_(budget_bytes), admit_(std::move(admit)) {
  for (auto t : cached_types) {
    OUTRIDER_ASSERT(t < 32, "cached record types must be below 32");
    type_mask_ |= 1U << t;
  }
}

bool cached_journal::admitted(std::uint8_t type, std::string_view payload) const {
  return type < 32 && (type_mask_ & (1U << type)) != 0 && payload.size() <= budget_ &&
         (!admit_ || admit_(type, payload));
}

void cached_journal::keep(std::uint64_t position, std::uint8_t type, std::string payload) {
  const auto size = payload.size();
  evict_to(budget_ - size);
  entries_.emplace(position, entry{type, std::move(payload)});
  order_.push_back(position);
  bytes_ += size;
}

result<std::uint64_t> cached_journal::append(std::uint8_t type, std::string_view payload) {
  auto position = inner_.append(type, payload);
  if (position && admitted(type, payload)) keep(*position, type, std::string(payload));
  return position;
}

result<std::uint64_t> cached_journal::append_owned(std::uint8_t type, std::string&& payload) {
  auto position = inner_.append(type, payload);
  if (position && admitted(type, payload)) keep(*position, type, std::move(payload));
  return position;
}

result<journal_record> cached_journal::read(std::uint64_t position) {
  auto it = entries_.find(position);
  if (it == entries_.end()) {
    ++misses_;
    return inner_.read(position);
  }
  ++hits_;
  return journal_record{position, it->second.type, it->second.payload};
}

void cached_journal::evict_to(std::size_t budget) {
  while (bytes_ > budget && !order_.empty()) {
    auto it = entries_.find(order_.front());
    order_.pop_front();
    if (it == entries_.end()) continue;
    bytes_ -= it->second.payload.size();
    entries_.erase(it);
  }
}

}  // namespace outrider::broker
