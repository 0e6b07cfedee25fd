// engine: the embedded broker's messaging semantics as a single-threaded,
// clock-free state machine over a journal and a scheduler.
//
// What it does (README.md has the state model):
//  - named durable queues; topics fan out to subscription queues bound to them;
//  - publish (optionally scheduled: deliver_at in the future), at-least-once
//    delivery under a lease, ack, nack with retry delay, lease expiry,
//    dead-lettering after max_attempts deliveries, DLQ list/peek/replay,
//    cancel of a scheduled message by id;
//  - recovery: open() replays the journal and rebuilds every queue.
//
// Durability: every state change is appended to the journal before it takes
// effect in memory, and the mutating calls return the record's position. The
// owner confirms a publish (or a cancel) to its client only once the journal is
// durable up to that position; group commit happens outside the engine.
//
// Time: the engine never reads a clock. Calls that depend on time take `now`;
// next_wakeup() is the one instant the owner must arm a timer for, and
// tick(now) processes what is due then. Scheduled messages are never
// delivered before their deliver_at.
//
// Delivery: pull-style batches. dispatch() hands out ready messages to
// consumers with free credit (credit = max unacked deliveries in flight),
// round-robin among the consumers of a queue; the owner routes each delivery
// to its consumer's connection. Call dispatch() after anything that may make
// work available (publish, ack, nack, tick, subscribe, set_credit).
//
// Memory: a scheduled message costs one (due, ref) scheduler entry plus one
// 16-byte scheduled_index slot; its id, headers and body stay in the journal
// and are read back when it comes due. Ready and leased messages cost about
// 100 bytes each (no body).
//
// Thread-safety: none; one owner thread (the broker's engine strand). The
// journal and scheduler passed to open() must outlive the engine and are used
// only from that thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/id.h"
#include "base/random.h"
#include "base/result.h"
#include "broker/checkpoint_file.h"
#include "broker/detail/scheduled_index.h"
#include "broker/journal.h"
#include "broker/record_format.h"
#include "timing/scheduler.h"

namespace outrider::broker {

inline constexpr std::size_t default_max_body_bytes = 1024 * 1024;
inline constexpr std::size_t default_max_header_bytes = 64 * 1024;
inline constexpr std::uint32_t default_max_attempts = 5;
inline constexpr nanoseconds default_lease = std::chrono::seconds(30);
// Suffix of the default dead-letter queue name: "<queue>.dlq".
inline constexpr std::string_view dead_letter_suffix = ".dlq";

struct queue_options {
  // Deliveries before the message moves to the dead-letter queue; 0 = unlimited.
  std::uint32_t max_attempts = default_max_attempts;
  // Visibility timeout of a delivery. REQUIRES: > 0.
  nanoseconds lease = default_lease;
  // Dead-letter queue; empty means "<name>.dlq". Declared on demand.
  std::string dead_letter_queue;
};

struct engine_options {
  std::size_t max_body_bytes = default_max_body_bytes;
  std::size_t max_header_bytes = default_max_header_bytes;  // sum of names and values
  // Journal positions are grouped into buckets of 2^shift for reclamation
  // bookkeeping; lowest_live_position() is exact to a bucket (rounded down).
  unsigned reclaim_bucket_shift = 20;
  // Scheduler entries popped per pop_due() call inside tick().
  std::size_t fire_batch = 4096;
  // Source of message ids when the publisher gives none; nullptr = thread_random().
  random_source* random = nullptr;
};

struct message {
  id128 id;
  std::map<std::string, std::string> headers;  // trace context included
  std::string body;
  wall_time published_at;
  wall_time deliver_at;  // == published_at unless scheduled
};

struct publish_request {
  std::string destination;  // a queue or a topic
  id128 id;                 // zero: the engine assigns a time-ordered id
  std::map<std::string, std::string> headers;
  std::string body;
  std::optional<wall_time> deliver_at;  // absent or <= now: ready at once
};

struct publish_receipt {
  id128 id;
  std::uint64_t position = 0;  // confirm once the journal is durable up to here
  std::size_t queues = 0;      // destinations it was placed in (0: topic without subscriptions)
  bool scheduled = false;
};

using consumer_id = std::uint64_t;
using delivery_tag = std::uint64_t;

struct delivery {
  consumer_id consumer = 0;
  delivery_tag tag = 0;
  std::string queue;
  std::uint32_t attempt = 1;  // 1 on the first delivery
  wall_time lease_expires_at;
  message msg;
};

enum class message_state : std::uint8_t { ready, leased, retry_wait };

struct message_info {
  id128 id;
  message_state state = message_state::ready;
  std::uint32_t failed_attempts = 0;
  std::uint64_t position = 0;  // of the publish record
  std::string origin_queue;    // dead-letter queues: where it came from
};

struct queue_stats {
  std::size_t ready = 0;
  std::size_t leased = 0;
  std::size_t retry_wait = 0;   // nacked with a delay
  std::uint64_t scheduled = 0;  // published for later, not yet due
  std::size_t consumers = 0;
  bool is_dead_letter_queue = false;
  std::string dead_letter_queue;  // empty for a dead-letter queue
};

class engine {
 public:
  // Rebuilds state by replaying `log` from its start: queues, topics and
  // bindings; ready messages (leased ones are ready again; acked ones gone);
  // retry waits and scheduled messages re-inserted into `sched` (past-due ones
  // fire on the first tick); dead letters; cancellations. `sched` must be empty.
  // Errors: the journal's (io_error, data_corruption) and data_corruption for a
  // record that does not decode.
  static result<std::unique_ptr<engine>> open(journal& log, timing::scheduler& sched,
                                              engine_options options = {});

  // Like open(), but starts from a checkpoint written by write_checkpoint()
  // (`in` positioned after its header, whose high-water is `high_water`) and
  // replays only the journal from `high_water` on. On error the engine is not
  // usable and `sched` holds entries: discard both and fall back to open() on a
  // fresh scheduler. Errors: data_corruption (a damaged checkpoint: the
  // reader's), the journal's, the scheduler's.
  static result<std::unique_ptr<engine>> open_from_checkpoint(journal& log,
                                                              timing::scheduler& sched,
                                                              checkpoint_reader& in,
                                                              std::uint64_t high_water,
                                                              engine_options options = {});

  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;
  ~engine();

  // --- topology (idempotent: redeclaring with equal options is a no-op) ---

  // Declares `name` and its dead-letter queue. Errors: invalid_argument (bad
  // name or options), already_exists (exists with other options or is a topic),
  // journal errors.
  status declare_queue(std::string_view name, const queue_options& options = {});
  // Errors: invalid_argument, already_exists (a queue has that name), journal errors.
  status declare_topic(std::string_view name);
  // Subscribes `queue` to `topic`: later publishes to the topic are copied into it.
  // Errors: topic_not_found, queue_not_found, journal errors.
  status bind(std::string_view topic, std::string_view queue);
  // Declares the subscription queue of app `app_id` on `topic` ("<topic>.<app_id>")
  // and binds it; returns its name. Competing instances of one app share it.
  result<std::string> declare_subscription(std::string_view topic, std::string_view app_id,
                                           const queue_options& options = {});

  // --- publishing ---

  // Appends the message and places it in its destination queue(s), or schedules
  // it for deliver_at. Errors: queue_not_found (unknown destination),
  // message_too_large (body or headers over the limits), already_exists (a
  // message with this id is still pending in a destination), journal errors
  // (nothing accepted), scheduler errors (the record is journaled but the
  // message is not confirmed; recovery will schedule it).
  result<publish_receipt> publish(publish_request request, wall_time now);

  // Cancels a scheduled message that is not yet due. Writes a tombstone and
  // returns its position (durable -> the cancel is confirmed).
  // Errors: message_not_found when no scheduled message has that id (never
  // published, already cancelled, or delivered and acknowledged; no tombstone
  // is written, so retrying a cancel is safe: treat it as "already gone");
  // message_not_scheduled when the message is already due (ready, leased,
  // waiting for a retry or dead-lettered); journal errors.
  result<std::uint64_t> cancel(const id128& id);

  // --- consuming ---

  // Errors: queue_not_found, invalid_argument (credit 0).
  result<consumer_id> subscribe(std::string_view queue, std::uint32_t credit);
  // Its in-flight deliveries count as failed attempts and become ready again
  // (or dead letters) — the consumer may have died on them — unless
  // `release_in_flight` (a graceful stop): then they are ready again without
  // counting an attempt. Errors: consumer_not_found, journal errors.
  status unsubscribe(consumer_id consumer, bool release_in_flight = false);
  // Sets the consumer's limit of unacknowledged deliveries; 0 pauses it.
  // Errors: consumer_not_found.
  status set_credit(consumer_id consumer, std::uint32_t credit);

  // Leases up to `max` ready messages to consumers with free credit, fair
  // round-robin per queue, appending them to `out`. Each message is read back
  // from the journal. A message whose publish record is at or beyond
  // `durable_end` is not handed out yet (its queue stays pending for the next
  // dispatch), so the owner can pass the journal's durable end and consumers
  // never see a message a crash could take back. Errors: journal read errors
  // (deliveries made so far are in `out`; the failing message stays at the head
  // of its queue).
  status dispatch(wall_time now, std::size_t max, std::vector<delivery>& out,
                  std::uint64_t durable_end = UINT64_MAX);

  // Removes the delivered message. Returns the ack record's position.
  // Errors: delivery_not_found (unknown tag, or its lease expired: it is
  // redelivered), journal errors.
  result<std::uint64_t> ack(delivery_tag tag, wall_time now);
  // Ends the delivery as failed: the message is ready again after `delay`
  // (never earlier), or moves to the dead-letter queue after max_attempts.
  // Errors: as ack(); invalid_argument for a negative delay.
  result<std::uint64_t> nack(delivery_tag tag, wall_time now, nanoseconds delay = {});

  // Gives the delivery back unprocessed (a consumer shutting down): the
  // message is ready again at once and the attempt is not counted, so it
  // never dead-letters. Errors: as ack().
  result<std::uint64_t> release(delivery_tag tag, wall_time now);

  // Ends the delivery as failed and moves the message to the queue's
  // dead-letter queue at once (the consumer judged it unprocessable).
  // Errors: as ack(); failed_precondition for a queue without a dead-letter
  // queue (a dead-letter queue itself).
  result<std::uint64_t> dead_letter(delivery_tag tag, wall_time now);

  // --- time ---

  // Earliest instant at which tick() has work (a scheduled message or retry
  // due, a lease expiring); nullopt when nothing is pending. May be early
  // (never late): tick() then finds nothing and next_wakeup() moves on.
  std::optional<wall_time> next_wakeup() const;
  // Expires leases and fires everything due at `now`. Errors: the first
  // journal/scheduler error; what could be processed was.
  status tick(wall_time now);

  // --- inspection and dead letters ---

  std::vector<std::string> queue_names() const;
  result<queue_stats> stats(std::string_view queue) const;
  // Messages of `queue` in delivery order (ready first, then leased, then
  // retry waits), at most `max`. Errors: queue_not_found.
  result<std::vector<message_info>> list(std::string_view queue, std::size_t max) const;
  // Reads one message of `queue` from the journal without changing it.
  // Errors: queue_not_found, message_not_found, journal errors.
  result<message> peek(std::string_view queue, const id128& id);
  // Moves a ready message of dead-letter queue `dead_letter_queue` back to the
  // queue it came from, with its attempts reset. Returns the record position.
  // Errors: queue_not_found, message_not_found (absent or leased),
  // already_exists (the target holds a message with that id), journal errors.
  result<std::uint64_t> replay_dead_letter(std::string_view dead_letter_queue, const id128& id);
  // Replays up to `max` ready messages of the dead-letter queue; returns how many.
  result<std::size_t> replay_dead_letters(std::string_view dead_letter_queue, std::size_t max);

  // Scheduled messages pending (cancelled ones excluded).
  std::size_t scheduled_count() const noexcept { return scheduled_.size(); }

  // --- checkpoint ---

  // Enumerates every entry of the scheduler passed to open() (the engine only
  // knows the scheduler interface, which cannot list its entries).
  using scheduler_entries =
      std::function<status(const std::function<status(const timing::due_entry&)>&)>;
  // Writes the engine's whole state after out's header: topology, every queue's
  // messages (leased ones as ready: a restart ends their leases, as replay does),
  // the scheduled index, retry and cancelled references and `entries` (the
  // scheduler's). It must describe the journal up to its current end, i.e. the
  // header's high-water is the journal end now. docs/formats/broker-checkpoint.md.
  // Errors: `entries`' (out's errors surface at out.finish()).
  status write_checkpoint(const scheduler_entries& entries, checkpoint_writer& out);

  // The same content in two steps, so that the slow part runs off the owner's
  // thread: snapshot_for_checkpoint() (owner's thread; serializes the small
  // state — topology, queues, references — and freezes the scheduled index,
  // whose changes wait aside per shard until written: milliseconds and no copy
  // at 10M scheduled messages) captures the
  // state as of the journal end now; write() streams it on any thread, once,
  // while the engine goes on. `entries` must enumerate the scheduler's entries
  // as of the same moment (e.g. a timing::disk_scheduler::snapshot()).
  class checkpoint_snapshot {
   public:
    // Errors: `entries`' (out's errors surface at out.finish()).
    status write(checkpoint_writer& out);

   private:
    friend class engine;
    checkpoint_buffer state;
    detail::scheduled_index::snapshot index;
    scheduler_entries entries;
  };
  std::unique_ptr<checkpoint_snapshot> snapshot_for_checkpoint(scheduler_entries entries);

  // --- reclamation ---

  // Lowest journal position any live message or topology record still
  // references (rounded down to its bucket); nullopt if nothing is referenced.
  // After the journal is durable, the owner may drop everything below it.
  std::optional<std::uint64_t> lowest_live_position() const;
  // The same, counting messages only (not topology records).
  std::optional<std::uint64_t> lowest_live_message_position() const;
  // Re-appends the topology records (queues, topics, bindings) journaled below
  // `position`, so that old segments holding only topology can be reclaimed.
  // Typical use: rejournal_topology_below(lowest_live_message_position() or
  // the journal end), sync, then reclaim below lowest_live_position().
  status rejournal_topology_below(std::uint64_t position);

 private:
  static constexpr std::uint32_t no_queue = UINT32_MAX;

  struct message_slot {
    std::uint64_t position = 0;   // publish record
    std::uint64_t ready_seq = 0;  // matches its ready-deque entry while ready
    std::uint64_t tag = 0;        // while leased
    std::uint64_t retry_ref = 0;  // while retry_wait: the nack record position
    std::uint32_t failed = 0;
    std::uint32_t origin = no_queue;  // dead-letter queues: source queue index
    message_state state = message_state::ready;
  };
  struct ready_entry {
    id128 id;
    std::uint64_t seq = 0;
  };
  struct queue_state {
    std::string name;
    queue_options options;  // dead_letter_queue resolved; empty for a DLQ
    bool is_dead_letter_queue = false;
    bool declared = false;  // false: a replay placeholder (see find_or_placeholder_queue)
    std::uint64_t declare_position = 0;
    std::unordered_map<id128, message_slot> messages;
    std::deque<ready_entry> ready;  // lazily cleaned: entries whose seq is stale are skipped
    std::size_t ready_count = 0;
    std::size_t leased_count = 0;
    std::size_t retry_count = 0;
    std::uint64_t scheduled = 0;
    std::vector<consumer_id> consumers;
    std::size_t next_consumer = 0;  // round-robin cursor
    bool dirty = false;             // queued in dirty_ for dispatch
  };
  struct topic_state {
    std::uint64_t declare_position = 0;
    std::map<std::uint32_t, std::uint64_t> bindings;  // queue index -> bind record position
  };
  struct consumer_state {
    std::uint32_t queue = 0;
    std::uint32_t credit = 0;
    std::uint32_t in_flight = 0;
  };
  struct lease {
    std::uint32_t queue = 0;
    id128 id;
    consumer_id consumer = 0;
    std::int64_t expires_ns = 0;
  };
  struct retry_target {
    std::uint32_t queue = 0;
    id128 id;
  };

  engine(journal& log, timing::scheduler& sched, engine_options options);

  status apply(const journal_record& record, bool replaying);
  status load_checkpoint(checkpoint_reader& in);
  void apply_queue_declare(const queue_declare_record& r, std::uint64_t position);
  void apply_topic_declare(const topic_declare_record& r, std::uint64_t position);
  void apply_bind(const bind_record& r, std::uint64_t position);
  status apply_publish(const publish_record& r, std::uint64_t position);
  void apply_ack(const ack_record& r, bool replaying);
  status apply_nack(const nack_record& r, std::uint64_t position, bool replaying);
  void apply_dead_letter(const dead_letter_record& r, bool replaying);
  void apply_dlq_replay(const dlq_replay_record& r);
  void apply_cancel(const cancel_record& r);

  std::optional<std::uint32_t> find_queue(std::string_view name) const;
  // The queue `name`, created undeclared if missing. Replay meets messages
  // before their queue's declaration when topology was rejournaled after them;
  // the declaration later in the journal fills in the options.
  std::uint32_t find_or_placeholder_queue(std::string_view name);
  // The message `id` in queue `q`; during replay a scheduled message that the
  // journal shows was already delivered is placed in its queues first.
  message_slot* find_message(std::uint32_t q, const id128& id, bool replaying);
  // The pending scheduled publish of `id` (verified against the journal) and
  // its position, if any.
  result<std::optional<std::pair<std::uint64_t, publish_record>>> find_scheduled(const id128& id);
  // already_exists if `id` is pending in one of `destinations` or scheduled.
  status check_not_pending(const id128& id, const std::vector<std::string>& destinations);
  void materialize(const publish_record& r, std::uint64_t position);
  void add_ready(std::uint32_t q, const id128& id, message_slot slot);
  void make_ready(std::uint32_t q, const id128& id, message_slot& slot);
  void remove_message(std::uint32_t q, const id128& id);
  void release_lease(delivery_tag tag);
  void mark_dirty(std::uint32_t q);
  // Ends a delivery without ack: a nack or dead_letter record, then applied.
  result<std::uint64_t> fail_delivery(delivery_tag tag, std::int64_t redeliver_at_ns,
                                      nack_reason reason);
  status fire(const timing::due_entry& entry);
  result<std::uint64_t> append_and_apply(record_type type, std::string payload);
  status declare_queue_internal(std::string_view name, const queue_options& options,
                                bool is_dead_letter_queue);

  void add_ref(std::map<std::uint64_t, std::uint64_t>& refs, std::uint64_t position);
  void drop_ref(std::map<std::uint64_t, std::uint64_t>& refs, std::uint64_t position);

  journal& log_;
  timing::scheduler& sched_;
  engine_options options_;
  std::vector<std::unique_ptr<queue_state>> queues_;
  // Looked up by string_view without building a std::string (a publish, its
  // delivery and its ack each look their queue up; names are longer than SSO).
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::uint32_t, name_hash, std::equal_to<>> queue_by_name_;
  std::map<std::string, topic_state, std::less<>> topics_;
  std::unordered_map<consumer_id, consumer_state> consumers_;
  std::unordered_map<delivery_tag, lease> leases_;
  std::set<std::pair<std::int64_t, delivery_tag>> lease_expiries_;
  std::unordered_map<std::uint64_t, retry_target> retry_refs_;  // nack position -> message
  std::unordered_set<std::uint64_t> stale_refs_;         // scheduler refs to drop when they fire
  detail::scheduled_index scheduled_;                    // fingerprint(id) -> publish position
  std::map<std::uint64_t, std::uint64_t> message_refs_;  // bucket -> live references
  std::map<std::uint64_t, std::uint64_t> topology_refs_;
  std::deque<std::uint32_t> dirty_;  // queues that may have deliveries to hand out
  consumer_id next_consumer_ = 1;
  delivery_tag next_tag_ = 1;
  std::uint64_t next_ready_seq_ = 1;
};

}  // namespace outrider::broker
