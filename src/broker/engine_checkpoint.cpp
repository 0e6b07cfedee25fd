// engine: writing and loading a checkpoint (docs/formats/broker-checkpoint.md).
// Kept apart from engine.cpp: the checkpoint mirrors the engine's private state
// one to one, field by field, and changes together with it.
#include <fmt/core.h>

#include "broker/engine.h"

namespace outrider::broker {
namespace {

// Message states in a checkpoint (leased messages are written as ready).
constexpr std::uint8_t state_ready = 0;
constexpr std::uint8_t state_retry_wait = 2;
// Scheduler entries are written in groups of at most this many, then a 0.
constexpr std::uint32_t entry_group = 4096;

}  // namespace

std::unique_ptr<engine::checkpoint_snapshot> engine::snapshot_for_checkpoint(
    scheduler_entries entries) {
  auto snap = std::make_unique<checkpoint_snapshot>();
  checkpoint_buffer& out = snap->state;
  out.put_u32(options_.reclaim_bucket_shift);
  out.put_u32(static_cast<std::uint32_t>(queues_.size()));
  for (const auto& qp : queues_) {
    const queue_state& queue = *qp;
    out.put_string(queue.name);
    out.put_u8(queue.declared ? 1 : 0);
    out.put_u8(queue.is_dead_letter_queue ? 1 : 0);
    out.put_u32(queue.options.max_attempts);
    out.put_i64(queue.options.lease.count());
    out.put_string(queue.options.dead_letter_queue);
    out.put_u64(queue.declare_position);
    out.put_u64(queue.scheduled);
    out.put_u64(queue.messages.size());
    auto put = [&out](const id128& id, const message_slot& slot, std::uint8_t state) {
      out.put_id(id);
      out.put_u64(slot.position);
      out.put_u32(slot.failed);
      out.put_u32(slot.origin);
      out.put_u8(state);
      out.put_u64(state == state_retry_wait ? slot.retry_ref : 0);
    };
    // Delivery order: leased (the oldest), then ready in queue order, then retry waits.
    for (const auto& [id, slot] : queue.messages) {
      if (slot.state == message_state::leased) put(id, slot, state_ready);
    }
    for (const ready_entry& e : queue.ready) {
      auto it = queue.messages.find(e.id);
      if (it != queue.messages.end() && it->second.state == message_state::ready &&
          it->second.ready_seq == e.seq) {
        put(e.id, it->second, state_ready);
      }
    }
    for (const auto& [id, slot] : queue.messages) {
      if (slot.state == message_state::retry_wait) put(id, slot, state_retry_wait);
    }
  }
  out.put_u32(static_cast<std::uint32_t>(topics_.size()));
  for (const auto& [name, topic] : topics_) {
    out.put_string(name);
    out.put_u64(topic.declare_position);
    out.put_u32(static_cast<std::uint32_t>(topic.bindings.size()));
    for (const auto& [q, position] : topic.bindings) {
      out.put_u32(q);
      out.put_u64(position);
    }
  }
  out.put_u64(message_refs_.size());
  for (const auto& [bucket, count] : message_refs_) {
    out.put_u64(bucket);
    out.put_u64(count);
  }
  out.put_u64(stale_refs_.size());
  for (std::uint64_t ref : stale_refs_) out.put_u64(ref);
  out.put_u64(retry_refs_.size());
  for (const auto& [ref, target] : retry_refs_) {
    out.put_u64(ref);
    out.put_u32(target.queue);
    out.put_id(target.id);
  }
  snap->index = scheduled_.freeze();
  snap->entries = std::move(entries);
  return snap;
}

status engine::checkpoint_snapshot::write(checkpoint_writer& out) {
  out.put_bytes(state.bytes().data(), state.bytes().size());
  state = {};
  detail::scheduled_index::save_snapshot(index, out);
  std::vector<timing::due_entry> group;
  group.reserve(entry_group);
  auto flush_group = [&] {
    out.put_u32(static_cast<std::uint32_t>(group.size()));
    for (const auto& e : group) {
      out.put_i64(e.due_ns);
      out.put_u64(e.ref);
    }
    group.clear();
  };
  OUTRIDER_TRY(entries([&](const timing::due_entry& e) {
    group.push_back(e);
    if (group.size() == entry_group) flush_group();
    return ok_status();
  }));
  if (!group.empty()) flush_group();
  out.put_u32(0);
  out.put_u64(checkpoint_format::end_magic);
  return ok_status();
}

status engine::write_checkpoint(const scheduler_entries& entries, checkpoint_writer& out) {
  return snapshot_for_checkpoint(entries)->write(out);
}

result<std::unique_ptr<engine>> engine::open_from_checkpoint(journal& log, timing::scheduler& sched,
                                                             checkpoint_reader& in,
                                                             std::uint64_t high_water,
                                                             engine_options options) {
  if (sched.size() != 0) {
    return error(errc::failed_precondition, "broker engine: the scheduler must start empty");
  }
  if (options.reclaim_bucket_shift > 62 || options.fire_batch == 0) {
    return error(errc::invalid_argument, "broker engine: bad reclaim_bucket_shift or fire_batch");
  }
  std::unique_ptr<engine> e(new engine(log, sched, std::move(options)));
  OUTRIDER_TRY(e->load_checkpoint(in));
  OUTRIDER_TRY(log.replay(high_water, [&e](const journal_record& r) { return e->apply(r, true); }));
  return e;
}

status engine::load_checkpoint(checkpoint_reader& in) {
  constexpr std::size_t max_count = std::size_t{1} << 40;  // keeps a corrupt count from looping
  std::uint32_t shift = 0;
  if (in.get_u32(shift) && shift != options_.reclaim_bucket_shift) {
    in.corrupt(fmt::format("written with reclaim bucket shift {}, this engine uses {}", shift,
                           options_.reclaim_bucket_shift));
  }
  std::uint32_t queue_count = 0;
  in.get_u32(queue_count);
  for (std::uint32_t i = 0; i < queue_count && in.error(); ++i) {
    auto queue = std::make_unique<queue_state>();
    std::uint8_t declared = 0, is_dlq = 0;
    std::int64_t lease_ns = 0;
    std::uint64_t scheduled = 0, messages = 0;
    in.get_string(queue->name, record_format::max_name_bytes);
    in.get_u8(declared);
    in.get_u8(is_dlq);
    in.get_u32(queue->options.max_attempts);
    in.get_i64(lease_ns);
    in.get_string(queue->options.dead_letter_queue, record_format::max_name_bytes);
    in.get_u64(queue->declare_position);
    in.get_u64(scheduled);
    in.get_u64(messages);
    if (!in.error()) break;
    if (queue_by_name_.contains(queue->name)) in.corrupt("a queue listed twice");
    queue->declared = declared != 0;
    queue->is_dead_letter_queue = is_dlq != 0;
    queue->options.lease = nanoseconds(lease_ns);
    queue->scheduled = scheduled;
    const auto q = static_cast<std::uint32_t>(queues_.size());
    if (queue->declared) add_ref(topology_refs_, queue->declare_position);
    queue_by_name_.emplace(queue->name, q);
    queues_.push_back(std::move(queue));
    if (messages > max_count) in.corrupt("an impossible message count");
    for (std::uint64_t m = 0; m < messages && in.error(); ++m) {
      id128 id;
      message_slot slot;
      std::uint8_t state = 0;
      std::uint64_t retry_ref = 0;
      if (!(in.get_id(id) && in.get_u64(slot.position) && in.get_u32(slot.failed) &&
            in.get_u32(slot.origin) && in.get_u8(state) && in.get_u64(retry_ref))) {
        break;
      }
      if (slot.origin != no_queue && slot.origin >= queue_count) {
        in.corrupt("a dead letter from an unknown queue");
        break;
      }
      if (queues_[q]->messages.contains(id)) {
        in.corrupt("a message listed twice");
        break;
      }
      if (state == state_ready) {
        add_ready(q, id, slot);
      } else if (state == state_retry_wait) {
        slot.state = message_state::retry_wait;
        slot.retry_ref = retry_ref;
        queues_[q]->messages.emplace(id, slot);
        ++queues_[q]->retry_count;
      } else {
        in.corrupt(fmt::format("unknown message state {}", state));
      }
    }
  }
  std::uint32_t topic_count = 0;
  in.get_u32(topic_count);
  for (std::uint32_t i = 0; i < topic_count && in.error(); ++i) {
    std::string name;
    std::uint64_t position = 0;
    std::uint32_t bindings = 0;
    if (!(in.get_string(name, record_format::max_name_bytes) && in.get_u64(position) &&
          in.get_u32(bindings))) {
      break;
    }
    auto [it, inserted] = topics_.try_emplace(std::move(name));
    if (!inserted) in.corrupt("a topic listed twice");
    it->second.declare_position = position;
    add_ref(topology_refs_, position);
    for (std::uint32_t b = 0; b < bindings && in.error(); ++b) {
      std::uint32_t q = 0;
      std::uint64_t bind_position = 0;
      if (!(in.get_u32(q) && in.get_u64(bind_position))) break;
      if (q >= queues_.size()) {
        in.corrupt("a binding to an unknown queue");
        break;
      }
      if (it->second.bindings.try_emplace(q, bind_position).second) {
        add_ref(topology_refs_, bind_position);
      }
    }
  }
  std::uint64_t count = 0;
  if (in.get_u64(count) && count > max_count) in.corrupt("an impossible reference count");
  for (std::uint64_t i = 0; i < count && in.error(); ++i) {
    std::uint64_t bucket = 0, refs = 0;
    if (in.get_u64(bucket) && in.get_u64(refs)) message_refs_[bucket] = refs;
  }
  count = 0;
  if (in.get_u64(count) && count > max_count) in.corrupt("an impossible stale count");
  for (std::uint64_t i = 0; i < count && in.error(); ++i) {
    std::uint64_t ref = 0;
    if (in.get_u64(ref)) stale_refs_.insert(ref);
  }
  count = 0;
  if (in.get_u64(count) && count > max_count) in.corrupt("an impossible retry count");
  for (std::uint64_t i = 0; i < count && in.error(); ++i) {
    std::uint64_t ref = 0;
    retry_target target;
    if (!(in.get_u64(ref) && in.get_u32(target.queue) && in.get_id(target.id))) break;
    if (target.queue >= queues_.size()) {
      in.corrupt("a retry in an unknown queue");
      break;
    }
    retry_refs_[ref] = target;
  }
  if (in.error()) scheduled_.load(in);
  for (;;) {
    std::uint32_t n = 0;
    if (!in.get_u32(n) || n == 0) break;
    if (n > entry_group) {
      in.corrupt("an oversized scheduler group");
      break;
    }
    for (std::uint32_t i = 0; i < n && in.error(); ++i) {
      std::int64_t due = 0;
      std::uint64_t ref = 0;
      if (in.get_i64(due) && in.get_u64(ref)) OUTRIDER_TRY(sched_.insert(due, ref));
    }
  }
  std::uint64_t end = 0;
  if (in.get_u64(end) && end != checkpoint_format::end_magic) in.corrupt("bad end marker");
  if (in.error() && !in.at_end()) in.corrupt("bytes after the end marker");
  return in.error();
}

}  // namespace outrider::broker
