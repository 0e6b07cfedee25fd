#include "broker/engine.h"

#include <algorithm>
#include <fmt/core.h>

#include "base/log.h"

namespace outrider::broker {
namespace {

const outrider::log::logger logger{"broker"};

constexpr unsigned max_bucket_shift = 62;

std::int64_t to_ns(wall_time t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

wall_time from_ns(std::int64_t ns) {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(nanoseconds(ns)));
}

// Names: 1..255 bytes of printable ASCII without spaces.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > record_format::max_name_bytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < '\x7f'; });
}

status invalid_name(std::string_view what, std::string_view name) {
  return error(errc::invalid_argument,
               fmt::format("invalid {} name '{}': 1 to {} printable characters without spaces",
                           what, name, record_format::max_name_bytes));
}

// A record the journal cannot give back any more, as opposed to a transient error.
bool unreadable_forever(errc code) {
  return code == errc::data_corruption || code == errc::not_found;
}

message to_message(publish_record&& r) {
  message m;
  m.id = r.id;
  m.headers = std::move(r.headers);
  m.body = std::move(r.body);
  m.published_at = from_ns(r.published_at_ns);
  m.deliver_at = from_ns(std::max(r.deliver_at_ns, r.published_at_ns));
  return m;
}

}  // namespace

engine::engine(journal& log, timing::scheduler& sched, engine_options options)
    : log_(log), sched_(sched), options_(std::move(options)) {}

engine::~engine() = default;

result<std::unique_ptr<engine>> engine::open(journal& log, timing::scheduler& sched,
                                             engine_options options) {
  if (sched.size() != 0) {
    return error(errc::failed_precondition, "broker engine: the scheduler must start empty");
  }
  if (options.reclaim_bucket_shift > max_bucket_shift || options.fire_batch == 0) {
    return error(errc::invalid_argument, "broker engine: bad reclaim_bucket_shift or fire_batch");
  }
  std::unique_ptr<engine> e(new engine(log, sched, std::move(options)));
  OUTRIDER_TRY(log.replay(0, [&e](const journal_record& r) { return e->apply(r, true); }));
  return e;
}

// ---------------------------------------------------------------- replay/apply

status engine::apply(const journal_record& record, bool replaying) {
  const std::string_view bytes = record.payload;
  switch (static_cast<record_type>(record.type)) {
    case record_type::queue_declare: {
      auto r = decode_queue_declare(bytes);
      if (!r) return std::move(r).error();
      apply_queue_declare(*r, record.position);
      return ok_status();
    }
    case record_type::topic_declare: {
      auto r = decode_topic_declare(bytes);
      if (!r) return std::move(r).error();
      apply_topic_declare(*r, record.position);
      return ok_status();
    }
    case record_type::bind: {
      auto r = decode_bind(bytes);
      if (!r) return std::move(r).error();
      apply_bind(*r, record.position);
      return ok_status();
    }
    case record_type::publish: {
      auto r = decode_publish_envelope(bytes);  // replay needs no headers or body
      if (!r) return std::move(r).error();
      return apply_publish(*r, record.position);
    }
    case record_type::ack: {
      auto r = decode_ack(bytes);
      if (!r) return std::move(r).error();
      apply_ack(*r, replaying);
      return ok_status();
    }
    case record_type::nack: {
      auto r = decode_nack(bytes);
      if (!r) return std::move(r).error();
      return apply_nack(*r, record.position, replaying);
    }
    case record_type::dead_letter: {
      auto r = decode_dead_letter(bytes);
      if (!r) return std::move(r).error();
      apply_dead_letter(*r, replaying);
      return ok_status();
    }
    case record_type::dlq_replay: {
      auto r = decode_dlq_replay(bytes);
      if (!r) return std::move(r).error();
      apply_dlq_replay(*r);
      return ok_status();
    }
    case record_type::cancel: {
      auto r = decode_cancel(bytes);
      if (!r) return std::move(r).error();
      apply_cancel(*r);
      return ok_status();
    }
  }
  return error(errc::data_corruption, fmt::format("broker journal: unknown record type {} at {}",
                                                  record.type, record.position));
}

void engine::apply_queue_declare(const queue_declare_record& r, std::uint64_t position) {
  queue_options options;
  options.max_attempts = r.max_attempts;
  options.lease = nanoseconds(r.lease_ns);
  options.dead_letter_queue = r.dead_letter_queue;
  if (auto q = find_queue(r.name)) {
    queue_state& queue = *queues_[*q];
    if (queue.declared) drop_ref(topology_refs_, queue.declare_position);
    queue.declared = true;
    queue.options = std::move(options);
    queue.is_dead_letter_queue = r.is_dead_letter_queue;
    queue.declare_position = position;
  } else {
    auto queue = std::make_unique<queue_state>();
    queue->name = r.name;
    queue->options = std::move(options);
    queue->is_dead_letter_queue = r.is_dead_letter_queue;
    queue->declared = true;
    queue->declare_position = position;
    queue_by_name_.emplace(r.name, static_cast<std::uint32_t>(queues_.size()));
    queues_.push_back(std::move(queue));
  }
  add_ref(topology_refs_, position);
}

void engine::apply_topic_declare(const topic_declare_record& r, std::uint64_t position) {
  auto [it, inserted] = topics_.try_emplace(r.name);
  if (!inserted) drop_ref(topology_refs_, it->second.declare_position);
  it->second.declare_position = position;
  add_ref(topology_refs_, position);
}

void engine::apply_bind(const bind_record& r, std::uint64_t position) {
  auto topic = topics_.find(r.topic);
  auto q = find_queue(r.queue);
  if (topic == topics_.end() || !q) {
    logger.warn("journal binds '{}' to '{}' but one of them is unknown; ignored", r.topic, r.queue);
    return;
  }
  auto [it, inserted] = topic->second.bindings.try_emplace(*q, position);
  if (!inserted) drop_ref(topology_refs_, it->second);
  it->second = position;
  add_ref(topology_refs_, position);
}

status engine::apply_publish(const publish_record& r, std::uint64_t position) {
  if (r.deliver_at_ns > r.published_at_ns) {
    OUTRIDER_TRY(sched_.insert(r.deliver_at_ns, position));
    scheduled_.insert(detail::scheduled_index::fingerprint(r.id), position);
    add_ref(message_refs_, position);
    for (const auto& d : r.destinations) ++queues_[find_or_placeholder_queue(d)]->scheduled;
    return ok_status();
  }
  for (const auto& d : r.destinations) {
    const std::uint32_t q = find_or_placeholder_queue(d);
    if (queues_[q]->messages.contains(r.id)) continue;
    add_ready(q, r.id, message_slot{.position = position});
    add_ref(message_refs_, position);
  }
  return ok_status();
}

void engine::materialize(const publish_record& r, std::uint64_t position) {
  for (const auto& d : r.destinations) {
    auto q = find_queue(d);
    if (!q) continue;
    queue_state& queue = *queues_[*q];
    if (queue.scheduled > 0) --queue.scheduled;
    if (queue.messages.contains(r.id)) continue;
    add_ready(*q, r.id, message_slot{.position = position});
    add_ref(message_refs_, position);
  }
}

void engine::apply_ack(const ack_record& r, bool replaying) {
  auto q = find_queue(r.queue);
  if (!q || find_message(*q, r.id, replaying) == nullptr) return;  // orphan of a reclaimed publish
  remove_message(*q, r.id);
}

status engine::apply_nack(const nack_record& r, std::uint64_t position, bool replaying) {
  auto q = find_queue(r.queue);
  if (!q) return ok_status();
  message_slot* slot = find_message(*q, r.id, replaying);
  if (slot == nullptr) return ok_status();
  queue_state& queue = *queues_[*q];
  slot->failed = r.failed_attempts;
  if (slot->state == message_state::leased) {
    release_lease(slot->tag);
    slot->state = message_state::ready;
    slot->ready_seq = 0;  // not in the ready deque
  } else if (slot->state == message_state::ready) {
    --queue.ready_count;
    slot->ready_seq = 0;  // its deque entry is now stale
  } else {
    --queue.retry_count;
  }
  slot->state = message_state::retry_wait;  // counted again by the branches below
  ++queue.retry_count;
  if (r.redeliver_at_ns > 0) {
    slot->retry_ref = position;
    retry_refs_[position] = retry_target{*q, r.id};
    if (auto inserted = sched_.insert(r.redeliver_at_ns, position); !inserted) {
      retry_refs_.erase(position);
      make_ready(*q, r.id, *slot);
      return error(inserted.error().code,
                   fmt::format("retry of {} could not be scheduled ({}); redelivering now",
                               r.id.to_string(), inserted.error().message));
    }
    return ok_status();
  }
  make_ready(*q, r.id, *slot);
  return ok_status();
}

void engine::apply_dead_letter(const dead_letter_record& r, bool replaying) {
  auto q = find_queue(r.queue);
  if (!q) return;
  message_slot* slot = find_message(*q, r.id, replaying);
  if (slot == nullptr) return;
  const std::optional<std::uint32_t> dlq = find_or_placeholder_queue(r.dead_letter_queue);
  const std::uint64_t position = slot->position;
  remove_message(*q, r.id);
  // A dead-letter queue shared by several fanned-out queues keeps one copy.
  if (queues_[*dlq]->messages.contains(r.id)) return;
  add_ready(*dlq, r.id,
            message_slot{.position = position, .failed = r.failed_attempts, .origin = *q});
  add_ref(message_refs_, position);
}

void engine::apply_dlq_replay(const dlq_replay_record& r) {
  auto dlq = find_queue(r.dead_letter_queue);
  auto target = find_queue(r.target);
  if (!dlq || !target) return;
  auto it = queues_[*dlq]->messages.find(r.id);
  if (it == queues_[*dlq]->messages.end() || queues_[*target]->messages.contains(r.id)) return;
  const std::uint64_t position = it->second.position;
  add_ready(*target, r.id, message_slot{.position = position});
  add_ref(message_refs_, position);
  remove_message(*dlq, r.id);
}

void engine::apply_cancel(const cancel_record& r) {
  if (!scheduled_.erase(detail::scheduled_index::fingerprint(r.id), r.publish_position)) return;
  stale_refs_.insert(r.publish_position);
  auto rec = log_.read(r.publish_position);
  if (!rec) return;
  auto publish = decode_publish(rec->payload);
  if (!publish) return;
  for (const auto& d : publish->destinations) {
    if (auto q = find_queue(d); q && queues_[*q]->scheduled > 0) --queues_[*q]->scheduled;
  }
}

// ---------------------------------------------------------------- helpers

std::uint32_t engine::find_or_placeholder_queue(std::string_view name) {
  if (auto q = find_queue(name)) return *q;
  auto queue = std::make_unique<queue_state>();
  queue->name = std::string(name);
  const auto q = static_cast<std::uint32_t>(queues_.size());
  queue_by_name_.emplace(queue->name, q);
  queues_.push_back(std::move(queue));
  return q;
}

std::optional<std::uint32_t> engine::find_queue(std::string_view name) const {
  auto it = queue_by_name_.find(name);
  if (it == queue_by_name_.end()) return std::nullopt;
  return it->second;
}

result<std::optional<std::pair<std::uint64_t, publish_record>>> engine::find_scheduled(
    const id128& id) {
  using found = std::optional<std::pair<std::uint64_t, publish_record>>;
  for (std::uint64_t position : scheduled_.find(detail::scheduled_index::fingerprint(id))) {
    auto rec = log_.read(position);
    if (!rec) {
      if (unreadable_forever(rec.error().code)) continue;
      return std::move(rec).error();
    }
    auto publish = decode_publish(rec->payload);
    if (publish && publish->id == id) return found(std::in_place, position, std::move(*publish));
  }
  return found();
}

engine::message_slot* engine::find_message(std::uint32_t q, const id128& id, bool replaying) {
  auto& messages = queues_[q]->messages;
  if (auto it = messages.find(id); it != messages.end()) return &it->second;
  if (!replaying) return nullptr;
  // The journal says this message was delivered, so it had come due before the
  // crash: place it now and drop its scheduler entry when that fires.
  auto scheduled = find_scheduled(id);
  if (!scheduled || !scheduled->has_value()) return nullptr;
  auto& [position, publish] = **scheduled;
  scheduled_.erase(detail::scheduled_index::fingerprint(id), position);
  stale_refs_.insert(position);
  materialize(publish, position);
  auto it = messages.find(id);
  return it == messages.end() ? nullptr : &it->second;
}

void engine::add_ready(std::uint32_t q, const id128& id, message_slot slot) {
  queue_state& queue = *queues_[q];
  slot.state = message_state::ready;
  slot.ready_seq = next_ready_seq_++;
  queue.ready.push_back(ready_entry{id, slot.ready_seq});
  queue.messages.insert_or_assign(id, slot);
  ++queue.ready_count;
  mark_dirty(q);
}

void engine::make_ready(std::uint32_t q, const id128& id, message_slot& slot) {
  queue_state& queue = *queues_[q];
  if (slot.state == message_state::retry_wait) --queue.retry_count;
  if (slot.state == message_state::ready && slot.ready_seq != 0) --queue.ready_count;
  slot.state = message_state::ready;
  slot.retry_ref = 0;
  slot.ready_seq = next_ready_seq_++;
  queue.ready.push_back(ready_entry{id, slot.ready_seq});
  ++queue.ready_count;
  mark_dirty(q);
}

void engine::remove_message(std::uint32_t q, const id128& id) {
  queue_state& queue = *queues_[q];
  auto it = queue.messages.find(id);
  if (it == queue.messages.end()) return;
  message_slot& slot = it->second;
  switch (slot.state) {
    case message_state::ready:
      if (slot.ready_seq != 0) --queue.ready_count;
      break;
    case message_state::leased: release_lease(slot.tag); break;
    case message_state::retry_wait:
      --queue.retry_count;  // its scheduler entry is dropped when it fires
      break;
  }
  drop_ref(message_refs_, slot.position);
  queue.messages.erase(it);
}

void engine::release_lease(delivery_tag tag) {
  auto it = leases_.find(tag);
  if (it == leases_.end()) return;
  const lease& l = it->second;
  lease_expiries_.erase({l.expires_ns, tag});
  if (auto c = consumers_.find(l.consumer); c != consumers_.end() && c->second.in_flight > 0) {
    --c->second.in_flight;
  }
  --queues_[l.queue]->leased_count;
  mark_dirty(l.queue);
  leases_.erase(it);
}

void engine::mark_dirty(std::uint32_t q) {
  queue_state& queue = *queues_[q];
  if (queue.dirty) return;
  queue.dirty = true;
  dirty_.push_back(q);
}

void engine::add_ref(std::map<std::uint64_t, std::uint64_t>& refs, std::uint64_t position) {
  ++refs[position >> options_.reclaim_bucket_shift];
}

void engine::drop_ref(std::map<std::uint64_t, std::uint64_t>& refs, std::uint64_t position) {
  auto it = refs.find(position >> options_.reclaim_bucket_shift);
  OUTRIDER_ASSERT(it != refs.end() && it->second > 0, "broker: reference count underflow");
  if (--it->second == 0) refs.erase(it);
}

// ---------------------------------------------------------------- topology

status engine::declare_queue(std::string_view name, const queue_options& options) {
  return declare_queue_internal(name, options, false);
}

status engine::declare_queue_internal(std::string_view name, const queue_options& options,
                                      bool is_dead_letter_queue) {
  if (!valid_name(name)) return invalid_name("queue", name);
  if (options.lease <= nanoseconds::zero()) {
    return error(errc::invalid_argument, fmt::format("queue '{}': lease must be positive", name));
  }
  if (topics_.contains(name)) {
    return error(errc::already_exists, fmt::format("'{}' is a topic", name));
  }
  queue_declare_record r;
  r.name = std::string(name);
  r.lease_ns = options.lease.count();
  r.is_dead_letter_queue = is_dead_letter_queue;
  if (!is_dead_letter_queue) {
    r.max_attempts = options.max_attempts;
    r.dead_letter_queue = options.dead_letter_queue.empty()
                              ? fmt::format("{}{}", name, dead_letter_suffix)
                              : options.dead_letter_queue;
    if (!valid_name(r.dead_letter_queue) || r.dead_letter_queue == name) {
      return invalid_name("dead-letter queue", r.dead_letter_queue);
    }
  }
  if (auto q = find_queue(name)) {
    const queue_state& queue = *queues_[*q];
    if (queue.is_dead_letter_queue == is_dead_letter_queue &&
        queue.options.max_attempts == r.max_attempts && queue.options.lease == options.lease &&
        queue.options.dead_letter_queue == r.dead_letter_queue) {
      return ok_status();
    }
    // Declaring a DLQ that exists already (any options) is fine: it is shared.
    if (is_dead_letter_queue) return ok_status();
    return error(errc::already_exists,
                 fmt::format("queue '{}' exists with different options", name));
  }
  if (!is_dead_letter_queue && !find_queue(r.dead_letter_queue)) {
    queue_options dlq_options;
    dlq_options.lease = options.lease;
    OUTRIDER_TRY(declare_queue_internal(r.dead_letter_queue, dlq_options, true));
  }
  auto position = log_.append(static_cast<std::uint8_t>(record_type::queue_declare), encode(r));
  if (!position) return std::move(position).error();
  apply_queue_declare(r, *position);
  return ok_status();
}

status engine::declare_topic(std::string_view name) {
  if (!valid_name(name)) return invalid_name("topic", name);
  if (find_queue(name)) return error(errc::already_exists, fmt::format("'{}' is a queue", name));
  if (topics_.contains(name)) return ok_status();
  topic_declare_record r{std::string(name)};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::topic_declare), encode(r));
  if (!position) return std::move(position).error();
  apply_topic_declare(r, *position);
  return ok_status();
}

status engine::bind(std::string_view topic, std::string_view queue) {
  auto t = topics_.find(topic);
  if (t == topics_.end()) {
    return error(errc::topic_not_found, fmt::format("topic '{}' not found", topic));
  }
  auto q = find_queue(queue);
  if (!q) return error(errc::queue_not_found, fmt::format("queue '{}' not found", queue));
  if (t->second.bindings.contains(*q)) return ok_status();
  bind_record r{std::string(topic), std::string(queue)};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::bind), encode(r));
  if (!position) return std::move(position).error();
  apply_bind(r, *position);
  return ok_status();
}

result<std::string> engine::declare_subscription(std::string_view topic, std::string_view app_id,
                                                 const queue_options& options) {
  if (!topics_.contains(topic)) {
    return error(errc::topic_not_found, fmt::format("topic '{}' not found", topic));
  }
  std::string name = fmt::format("{}.{}", topic, app_id);
  OUTRIDER_TRY(declare_queue(name, options));
  OUTRIDER_TRY(bind(topic, name));
  return name;
}

// ---------------------------------------------------------------- publishing

status engine::check_not_pending(const id128& id, const std::vector<std::string>& destinations) {
  for (const auto& d : destinations) {
    if (queues_[*find_queue(d)]->messages.contains(id)) {
      return error(errc::already_exists,
                   fmt::format("message {} is still pending in '{}'", id.to_string(), d));
    }
  }
  auto scheduled = find_scheduled(id);
  if (!scheduled) return std::move(scheduled).error();
  if (scheduled->has_value()) {
    return error(errc::already_exists,
                 fmt::format("message {} is already scheduled", id.to_string()));
  }
  return ok_status();
}

result<publish_receipt> engine::publish(publish_request request, wall_time now) {
  if (request.body.size() > options_.max_body_bytes) {
    return error(errc::message_too_large,
                 fmt::format("message body of {} bytes exceeds the limit of {} bytes",
                             request.body.size(), options_.max_body_bytes));
  }
  std::size_t header_bytes = 0;
  for (const auto& [k, v] : request.headers) header_bytes += k.size() + v.size();
  if (header_bytes > options_.max_header_bytes) {
    return error(errc::message_too_large,
                 fmt::format("message headers of {} bytes exceed the limit of {} bytes",
                             header_bytes, options_.max_header_bytes));
  }
  std::vector<std::string> destinations;
  if (find_queue(request.destination)) {
    destinations.push_back(request.destination);
  } else if (auto t = topics_.find(request.destination); t != topics_.end()) {
    for (const auto& [q, position] : t->second.bindings) destinations.push_back(queues_[q]->name);
  } else {
    return error(errc::queue_not_found,
                 fmt::format("no queue or topic named '{}'", request.destination));
  }
  publish_record r;
  // An id chosen by the publisher must not be pending already. One generated
  // here is new by construction (the millisecond and 80 random bits), so it
  // skips the check: a lookup in the scheduled index, and with millions of
  // scheduled messages a cache miss, on every publish without an id.
  const bool generated = request.id.is_zero();
  r.id = generated ? id128::time_ordered(now, options_.random ? *options_.random : thread_random())
                   : request.id;
  if (!generated) OUTRIDER_TRY(check_not_pending(r.id, destinations));
  const std::int64_t now_ns = to_ns(now);
  const std::int64_t deliver_ns = request.deliver_at ? to_ns(*request.deliver_at) : now_ns;
  r.published_at_ns = now_ns;
  r.deliver_at_ns = std::max(deliver_ns, now_ns);
  r.source = std::move(request.destination);
  r.destinations = std::move(destinations);
  r.headers = std::move(request.headers);
  r.body = std::move(request.body);
  auto position = log_.append_owned(static_cast<std::uint8_t>(record_type::publish), encode(r));
  if (!position) return std::move(position).error();
  OUTRIDER_TRY(apply_publish(r, *position));
  return publish_receipt{r.id, *position, r.destinations.size(), deliver_ns > now_ns};
}

result<std::uint64_t> engine::cancel(const id128& id) {
  auto scheduled = find_scheduled(id);
  if (!scheduled) return std::move(scheduled).error();
  if (!scheduled->has_value()) {
    for (const auto& queue : queues_) {
      if (queue->messages.contains(id)) {
        return error(errc::message_not_scheduled,
                     fmt::format("message {} is already due in '{}'", id.to_string(), queue->name));
      }
    }
    return error(errc::message_not_found,
                 fmt::format("no scheduled message {} (never published, cancelled or delivered)",
                             id.to_string()));
  }
  cancel_record r{id, (*scheduled)->first};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::cancel), encode(r));
  if (!position) return std::move(position).error();
  apply_cancel(r);
  return *position;
}

// ---------------------------------------------------------------- consuming

result<consumer_id> engine::subscribe(std::string_view queue, std::uint32_t credit) {
  auto q = find_queue(queue);
  if (!q) return error(errc::queue_not_found, fmt::format("queue '{}' not found", queue));
  if (credit == 0) return error(errc::invalid_argument, "consumer credit must be at least 1");
  const consumer_id id = next_consumer_++;
  consumers_.emplace(id, consumer_state{*q, credit, 0});
  queues_[*q]->consumers.push_back(id);
  mark_dirty(*q);
  return id;
}

status engine::unsubscribe(consumer_id consumer, bool release_in_flight) {
  auto it = consumers_.find(consumer);
  if (it == consumers_.end()) {
    return error(errc::consumer_not_found, fmt::format("consumer {} not found", consumer));
  }
  queue_state& queue = *queues_[it->second.queue];
  std::erase(queue.consumers, consumer);
  if (queue.next_consumer >= queue.consumers.size()) queue.next_consumer = 0;
  consumers_.erase(it);
  std::vector<delivery_tag> tags;
  for (const auto& [tag, l] : leases_) {
    if (l.consumer == consumer) tags.push_back(tag);
  }
  std::sort(tags.begin(), tags.end());
  for (delivery_tag tag : tags) {
    // Leases whose append fails stay in place and expire through tick().
    const nack_reason reason =
        release_in_flight ? nack_reason::released : nack_reason::consumer_gone;
    if (auto r = fail_delivery(tag, 0, reason); !r) return std::move(r).error();
  }
  return ok_status();
}

status engine::set_credit(consumer_id consumer, std::uint32_t credit) {
  auto it = consumers_.find(consumer);
  if (it == consumers_.end()) {
    return error(errc::consumer_not_found, fmt::format("consumer {} not found", consumer));
  }
  it->second.credit = credit;  // 0 pauses the consumer
  mark_dirty(it->second.queue);
  return ok_status();
}

status engine::dispatch(wall_time now, std::size_t max, std::vector<delivery>& out,
                        std::uint64_t durable_end) {
  const std::int64_t now_ns = to_ns(now);
  std::size_t handed = 0;
  std::size_t visits = dirty_.size();
  while (handed < max && visits-- > 0 && !dirty_.empty()) {
    const std::uint32_t q = dirty_.front();
    dirty_.pop_front();
    queue_state& queue = *queues_[q];
    queue.dirty = false;
    while (handed < max) {
      while (!queue.ready.empty()) {  // skip entries made stale by ack/nack/move
        const ready_entry& head = queue.ready.front();
        auto it = queue.messages.find(head.id);
        if (it != queue.messages.end() && it->second.state == message_state::ready &&
            it->second.ready_seq == head.seq) {
          break;
        }
        queue.ready.pop_front();
      }
      if (queue.ready.empty() || queue.consumers.empty()) break;
      std::optional<std::size_t> pick;
      for (std::size_t k = 0; k < queue.consumers.size(); ++k) {
        const std::size_t i = (queue.next_consumer + k) % queue.consumers.size();
        const consumer_state& c = consumers_.at(queue.consumers[i]);
        if (c.in_flight < c.credit) {
          pick = i;
          break;
        }
      }
      if (!pick) break;
      const id128 id = queue.ready.front().id;
      message_slot& slot = queue.messages.at(id);
      if (slot.position >= durable_end) {
        // Not durable yet: consumers never see a message a crash could take back.
        mark_dirty(q);
        break;
      }
      auto rec = log_.read(slot.position);
      result<publish_record> publish =
          rec ? decode_publish(rec->payload) : result<publish_record>(std::move(rec).error());
      if (!publish) {
        if (unreadable_forever(publish.error().code)) {
          logger.error("queue '{}': message {} at {} is unreadable ({}); dropped", queue.name,
                       id.to_string(), slot.position, publish.error().message);
          remove_message(q, id);
          continue;
        }
        mark_dirty(q);
        return std::move(publish).error();
      }
      queue.ready.pop_front();
      const consumer_id cid = queue.consumers[*pick];
      queue.next_consumer = (*pick + 1) % queue.consumers.size();
      const delivery_tag tag = next_tag_++;
      const std::int64_t expires_ns = now_ns + queue.options.lease.count();
      slot.state = message_state::leased;
      slot.tag = tag;
      slot.ready_seq = 0;
      --queue.ready_count;
      ++queue.leased_count;
      ++consumers_.at(cid).in_flight;
      leases_.emplace(tag, lease{q, id, cid, expires_ns});
      lease_expiries_.emplace(expires_ns, tag);
      out.push_back(delivery{cid, tag, queue.name, slot.failed + 1, from_ns(expires_ns),
                             to_message(std::move(*publish))});
      ++handed;
    }
    if (handed >= max && queue.ready_count > 0) mark_dirty(q);
  }
  return ok_status();
}

result<std::uint64_t> engine::ack(delivery_tag tag, wall_time now) {
  auto it = leases_.find(tag);
  if (it == leases_.end()) {
    return error(errc::delivery_not_found,
                 fmt::format("delivery {} is unknown or its lease expired", tag));
  }
  if (it->second.expires_ns <= to_ns(now)) {
    OUTRIDER_TRY(fail_delivery(tag, 0, nack_reason::lease_expired));
    return error(errc::delivery_not_found,
                 fmt::format("the lease of delivery {} expired; it will be redelivered", tag));
  }
  ack_record r{queues_[it->second.queue]->name, it->second.id};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::ack), encode(r));
  if (!position) return std::move(position).error();
  apply_ack(r, false);
  return *position;
}

result<std::uint64_t> engine::nack(delivery_tag tag, wall_time now, nanoseconds delay) {
  if (delay < nanoseconds::zero()) {
    return error(errc::invalid_argument, "nack delay must not be negative");
  }
  auto it = leases_.find(tag);
  if (it == leases_.end()) {
    return error(errc::delivery_not_found,
                 fmt::format("delivery {} is unknown or its lease expired", tag));
  }
  const std::int64_t now_ns = to_ns(now);
  if (it->second.expires_ns <= now_ns) {
    OUTRIDER_TRY(fail_delivery(tag, 0, nack_reason::lease_expired));
    return error(errc::delivery_not_found,
                 fmt::format("the lease of delivery {} expired; it will be redelivered", tag));
  }
  return fail_delivery(tag, delay > nanoseconds::zero() ? now_ns + delay.count() : 0,
                       nack_reason::nack);
}

result<std::uint64_t> engine::release(delivery_tag tag, wall_time now) {
  auto it = leases_.find(tag);
  if (it == leases_.end()) {
    return error(errc::delivery_not_found,
                 fmt::format("delivery {} is unknown or its lease expired", tag));
  }
  if (it->second.expires_ns <= to_ns(now)) {
    OUTRIDER_TRY(fail_delivery(tag, 0, nack_reason::lease_expired));
    return error(errc::delivery_not_found,
                 fmt::format("the lease of delivery {} expired; it will be redelivered", tag));
  }
  return fail_delivery(tag, 0, nack_reason::released);
}

result<std::uint64_t> engine::dead_letter(delivery_tag tag, wall_time now) {
  auto it = leases_.find(tag);
  if (it == leases_.end()) {
    return error(errc::delivery_not_found,
                 fmt::format("delivery {} is unknown or its lease expired", tag));
  }
  const queue_state& queue = *queues_[it->second.queue];
  if (queue.options.dead_letter_queue.empty() || !find_queue(queue.options.dead_letter_queue)) {
    return error(errc::failed_precondition,
                 fmt::format("queue '{}' has no dead-letter queue", queue.name));
  }
  if (it->second.expires_ns <= to_ns(now)) {
    OUTRIDER_TRY(fail_delivery(tag, 0, nack_reason::lease_expired));
    return error(errc::delivery_not_found,
                 fmt::format("the lease of delivery {} expired; it will be redelivered", tag));
  }
  return fail_delivery(tag, 0, nack_reason::rejected);
}

result<std::uint64_t> engine::fail_delivery(delivery_tag tag, std::int64_t redeliver_at_ns,
                                            nack_reason reason) {
  const lease l = leases_.at(tag);
  queue_state& queue = *queues_[l.queue];
  const bool counts = reason != nack_reason::released;
  const std::uint32_t failed = queue.messages.at(l.id).failed + (counts ? 1 : 0);
  const std::uint32_t max_attempts = queue.options.max_attempts;
  const bool exhausted =
      counts && ((max_attempts != 0 && failed >= max_attempts) || reason == nack_reason::rejected);
  if (exhausted && !queue.options.dead_letter_queue.empty() &&
      find_queue(queue.options.dead_letter_queue)) {
    dead_letter_record r{queue.name, l.id, queue.options.dead_letter_queue, failed, reason};
    auto position = log_.append(static_cast<std::uint8_t>(record_type::dead_letter), encode(r));
    if (!position) return std::move(position).error();
    apply_dead_letter(r, false);
    return *position;
  }
  nack_record r{queue.name, l.id, failed, redeliver_at_ns, reason};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::nack), encode(r));
  if (!position) return std::move(position).error();
  OUTRIDER_TRY(apply_nack(r, *position, false));
  return *position;
}

// ---------------------------------------------------------------- time

std::optional<wall_time> engine::next_wakeup() const {
  std::optional<std::int64_t> earliest = sched_.next_due();
  if (!lease_expiries_.empty()) {
    const std::int64_t lease_ns = lease_expiries_.begin()->first;
    earliest = earliest ? std::min(*earliest, lease_ns) : lease_ns;
  }
  if (!earliest) return std::nullopt;
  return from_ns(*earliest);
}

status engine::tick(wall_time now) {
  const std::int64_t now_ns = to_ns(now);
  while (!lease_expiries_.empty() && lease_expiries_.begin()->first <= now_ns) {
    auto r = fail_delivery(lease_expiries_.begin()->second, 0, nack_reason::lease_expired);
    if (!r) return std::move(r).error();
  }
  std::vector<timing::due_entry> due;
  for (;;) {
    due.clear();
    auto popped = sched_.pop_due(now_ns, due, options_.fire_batch);
    if (!popped) return std::move(popped).error();
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (auto fired = fire(due[i]); !fired) {
        // Put back what was popped but not processed; the owner retries later.
        for (std::size_t j = i + 1; j < due.size(); ++j) {
          (void)sched_.insert(due[j].due_ns, due[j].ref);
        }
        return fired;
      }
    }
    if (*popped < options_.fire_batch) return ok_status();
  }
}

status engine::fire(const timing::due_entry& entry) {
  const std::uint64_t ref = entry.ref;
  if (stale_refs_.erase(ref) != 0) {  // cancelled, or placed during replay
    drop_ref(message_refs_, ref);
    return ok_status();
  }
  if (auto it = retry_refs_.find(ref); it != retry_refs_.end()) {
    const retry_target target = it->second;
    retry_refs_.erase(it);
    auto& messages = queues_[target.queue]->messages;
    auto m = messages.find(target.id);
    if (m != messages.end() && m->second.state == message_state::retry_wait &&
        m->second.retry_ref == ref) {
      make_ready(target.queue, target.id, m->second);
    }
    return ok_status();
  }
  auto rec = log_.read(ref);
  result<publish_record> publish =
      rec ? decode_publish(rec->payload) : result<publish_record>(std::move(rec).error());
  if (!publish) {
    if (unreadable_forever(publish.error().code)) {
      logger.error("scheduled message at {} is unreadable ({}); dropped", ref,
                   publish.error().message);
      drop_ref(message_refs_, ref);
      return ok_status();
    }
    OUTRIDER_TRY(sched_.insert(entry.due_ns, ref));
    return std::move(publish).error();
  }
  if (!scheduled_.erase(detail::scheduled_index::fingerprint(publish->id), ref)) {
    drop_ref(message_refs_, ref);
    return ok_status();
  }
  materialize(*publish, ref);
  drop_ref(message_refs_, ref);
  return ok_status();
}

// ---------------------------------------------------------------- inspection

std::vector<std::string> engine::queue_names() const {
  std::vector<std::string> names;
  names.reserve(queues_.size());
  for (const auto& q : queues_) names.push_back(q->name);
  std::sort(names.begin(), names.end());
  return names;
}

result<queue_stats> engine::stats(std::string_view name) const {
  auto q = find_queue(name);
  if (!q) return error(errc::queue_not_found, fmt::format("queue '{}' not found", name));
  const queue_state& queue = *queues_[*q];
  return queue_stats{queue.ready_count,
                     queue.leased_count,
                     queue.retry_count,
                     queue.scheduled,
                     queue.consumers.size(),
                     queue.is_dead_letter_queue,
                     queue.options.dead_letter_queue};
}

result<std::vector<message_info>> engine::list(std::string_view name, std::size_t max) const {
  auto q = find_queue(name);
  if (!q) return error(errc::queue_not_found, fmt::format("queue '{}' not found", name));
  const queue_state& queue = *queues_[*q];
  std::vector<message_info> out;
  auto info = [this](const id128& id, const message_slot& s) {
    return message_info{id, s.state, s.failed, s.position,
                        s.origin == no_queue ? std::string() : queues_[s.origin]->name};
  };
  for (const ready_entry& e : queue.ready) {
    if (out.size() >= max) return out;
    auto it = queue.messages.find(e.id);
    if (it != queue.messages.end() && it->second.state == message_state::ready &&
        it->second.ready_seq == e.seq) {
      out.push_back(info(e.id, it->second));
    }
  }
  for (auto state : {message_state::leased, message_state::retry_wait}) {
    for (const auto& [id, slot] : queue.messages) {
      if (out.size() >= max) return out;
      if (slot.state == state) out.push_back(info(id, slot));
    }
  }
  return out;
}

result<message> engine::peek(std::string_view name, const id128& id) {
  auto q = find_queue(name);
  if (!q) return error(errc::queue_not_found, fmt::format("queue '{}' not found", name));
  std::uint64_t position = 0;
  if (auto it = queues_[*q]->messages.find(id); it != queues_[*q]->messages.end()) {
    position = it->second.position;
  } else {
    auto scheduled = find_scheduled(id);
    if (!scheduled) return std::move(scheduled).error();
    const auto& destinations =
        scheduled->has_value() ? (*scheduled)->second.destinations : std::vector<std::string>{};
    if (std::find(destinations.begin(), destinations.end(), name) == destinations.end()) {
      return error(errc::message_not_found,
                   fmt::format("no message {} in '{}'", id.to_string(), name));
    }
    return to_message(std::move((*scheduled)->second));
  }
  auto rec = log_.read(position);
  if (!rec) return std::move(rec).error();
  auto publish = decode_publish(rec->payload);
  if (!publish) return std::move(publish).error();
  return to_message(std::move(*publish));
}

result<std::uint64_t> engine::replay_dead_letter(std::string_view dead_letter_queue,
                                                 const id128& id) {
  auto q = find_queue(dead_letter_queue);
  if (!q) {
    return error(errc::queue_not_found, fmt::format("queue '{}' not found", dead_letter_queue));
  }
  auto it = queues_[*q]->messages.find(id);
  if (it == queues_[*q]->messages.end() || it->second.state != message_state::ready ||
      it->second.origin == no_queue) {
    return error(errc::message_not_found,
                 fmt::format("no dead letter {} ready in '{}'", id.to_string(), dead_letter_queue));
  }
  const queue_state& target = *queues_[it->second.origin];
  if (target.messages.contains(id)) {
    return error(errc::already_exists,
                 fmt::format("'{}' already holds message {}", target.name, id.to_string()));
  }
  dlq_replay_record r{std::string(dead_letter_queue), id, target.name};
  auto position = log_.append(static_cast<std::uint8_t>(record_type::dlq_replay), encode(r));
  if (!position) return std::move(position).error();
  apply_dlq_replay(r);
  return *position;
}

result<std::size_t> engine::replay_dead_letters(std::string_view dead_letter_queue,
                                                std::size_t max) {
  auto infos = list(dead_letter_queue, max);
  if (!infos) return std::move(infos).error();
  std::size_t replayed = 0;
  for (const message_info& m : *infos) {
    if (m.state != message_state::ready || m.origin_queue.empty()) continue;
    auto r = replay_dead_letter(dead_letter_queue, m.id);
    if (!r) {
      if (r.error().code == errc::already_exists) continue;
      return std::move(r).error();
    }
    ++replayed;
  }
  return replayed;
}

// ---------------------------------------------------------------- reclamation

std::optional<std::uint64_t> engine::lowest_live_message_position() const {
  if (message_refs_.empty()) return std::nullopt;
  return message_refs_.begin()->first << options_.reclaim_bucket_shift;
}

std::optional<std::uint64_t> engine::lowest_live_position() const {
  std::optional<std::uint64_t> lowest = lowest_live_message_position();
  if (!topology_refs_.empty()) {
    const std::uint64_t t = topology_refs_.begin()->first << options_.reclaim_bucket_shift;
    lowest = lowest ? std::min(*lowest, t) : t;
  }
  return lowest;
}

status engine::rejournal_topology_below(std::uint64_t position) {
  // Dead-letter queues first, so that a replay from any later point finds them.
  for (bool dead_letter_pass : {true, false}) {
    for (std::uint32_t q = 0; q < queues_.size(); ++q) {
      queue_state& queue = *queues_[q];
      if (queue.is_dead_letter_queue != dead_letter_pass || !queue.declared ||
          queue.declare_position >= position) {
        continue;
      }
      queue_declare_record r{queue.name, queue.options.max_attempts, queue.options.lease.count(),
                             queue.options.dead_letter_queue, queue.is_dead_letter_queue};
      auto p = log_.append(static_cast<std::uint8_t>(record_type::queue_declare), encode(r));
      if (!p) return std::move(p).error();
      apply_queue_declare(r, *p);
    }
  }
  for (auto& [name, topic] : topics_) {
    if (topic.declare_position < position) {
      topic_declare_record r{name};
      auto p = log_.append(static_cast<std::uint8_t>(record_type::topic_declare), encode(r));
      if (!p) return std::move(p).error();
      apply_topic_declare(r, *p);
    }
  }
  for (auto& [name, topic] : topics_) {
    std::vector<std::uint32_t> old;
    for (const auto& [q, bind_position] : topic.bindings) {
      if (bind_position < position) old.push_back(q);
    }
    for (std::uint32_t q : old) {
      bind_record r{name, queues_[q]->name};
      auto p = log_.append(static_cast<std::uint8_t>(record_type::bind), encode(r));
      if (!p) return std::move(p).error();
      apply_bind(r, *p);
    }
  }
  return ok_status();
}

}  // namespace outrider::broker
