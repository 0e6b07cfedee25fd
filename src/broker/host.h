// host: runs the broker engine for real: the durable log, the delay index,
// group commit, timers and the threads that own them. The protocol server and
// in-process users (tests, `outrider broker`) talk to the engine only through
// this class.
//
// Threads:
//  - the engine thread owns the engine, the log's appending side and the
//    delay index; every public call below is posted to it (thread-safe). It is
//    the host's own thread, or the thread of host_options::engine_context;
//  - the checkpoint thread writes checkpoints from snapshots the engine thread
//    takes in milliseconds (a frozen scheduled index, open delay-index files),
//    so a checkpoint of a big index never stalls the engine, and writes the
//    log's next segment ahead (storage::log::prepare_next_segment);
//  - the sync thread runs log.sync() (fdatasync). Group commit is pipelined:
//    while one sync is in flight the engine keeps appending, and the next sync
//    covers everything appended meanwhile. One sync is in flight at a time; the
//    sync thread starts the next one as soon as one returns if a small batch
//    that a publish waits for was appended meanwhile (no round trip through the
//    engine thread between two syncs; see immediate_sync_bytes), and posts each
//    result to the engine thread, which confirms.
// Completions (`done` callbacks, delivery sinks) run on the engine thread;
// they must be short (post to your own executor).
//
// Guarantees: a publish (or cancel, or declare) completes successfully only
// after its record is durable (fdatasync returned). Deliveries (early
// delivery, the default, as RabbitMQ classic queues do) are handed out as soon
// as a message's publish record is appended, in log order, before its fsync:
// a consumer may see a message that a crash then takes back, but its publisher
// was never confirmed and publishes it again (a duplicate, never a loss). Any
// later record about it (ack, nack, dead letter) is appended after its publish
// record, so it can never be durable without it. With
// host_options::deliver_after_fsync, deliveries wait until the publish record
// is durable. After a failed fdatasync the host refuses further work
// (io_error) until restarted: the kernel may have dropped the data, and
// recovery reads what is really on disk; from then on nothing past the durable
// end is delivered (messages delivered early stay leased; their publishers got
// io_error and their consumers' acks are refused).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "broker/engine.h"
#include "io/file_system.h"
#include "metrics/registry.h"
#include "storage/log.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::broker {

struct host_options {
  std::string data_dir;  // holds log/ and delay-index/
  storage::log_options log;
  engine_options engine;
  // Recently published messages kept in memory for their delivery (no read back
  // from disk while consumers keep up).
  std::size_t message_cache_bytes = 8 * 1024 * 1024;
  // Deliveries handed out per dispatch round.
  std::size_t dispatch_batch = 512;
  // Group commit: when a sync returns and less than this much was appended
  // while it ran, the sync thread starts the next sync at once; a larger batch
  // goes through the engine thread first (the old pacing), so it grows while
  // the engine is busy: fewer fdatasyncs (each costs ~0.1 ms of CPU here) per
  // message when the broker is CPU-bound, as with many unconfirmed publishes.
  std::uint64_t immediate_sync_bytes = 128 * 1024;
  // Records nobody waits for (acks, nacks, lease expiries, dead letters) start no
  // fdatasync of their own: they ride the next sync a publish, cancel or declare
  // starts, or are synced this long after being appended if none comes. Losing
  // one in a crash means a redelivery, never a loss (at least once); a message is
  // never acked on disk without its publish record (the log is synced in order).
  nanoseconds unawaited_sync_delay = std::chrono::milliseconds(10);
  // Deliver a message only once its publish record is durable (fsync), so a
  // consumer never sees a message a crash could take back; costs one or two
  // fsyncs of publish->consume latency. Off (the default): early delivery, at
  // append (see "Guarantees" above). Publish confirms wait for fsync either way.
  bool deliver_after_fsync = false;
  // How often fully consumed log segments are looked for and deleted (and
  // whether a checkpoint is due is checked).
  nanoseconds reclaim_interval = std::chrono::seconds(10);
  // Checkpoints (docs/formats/broker-checkpoint.md): a restart reads the last
  // one plus the log written after it instead of the whole log. One is written
  // at a clean stop and whenever the log has grown by checkpoint_log_bytes or by
  // 4x the last checkpoint's size since the last one, whichever is more (a big
  // index is not rewritten too often). 0 turns checkpoints off.
  std::uint64_t checkpoint_log_bytes = std::uint64_t{256} << 20;
  // Whether stop() writes one (crash tests turn it off to keep a log tail).
  bool checkpoint_at_stop = true;
  // Tests: runs on the checkpoint thread once a snapshot is streamed to
  // checkpoint.tmp, before its last block and sync (to hold a checkpoint in
  // flight while the engine goes on, or crash during it).
  std::function<void()> checkpoint_write_hook;
  // Runs the engine on this context (one thread) instead of a thread of its
  // own: `outrider broker` passes its connection thread, so a publish, its
  // confirm, a delivery and its ack cross no thread on their way through the
  // engine (each crossing is a wake-up, and on a busy machine a context switch).
  // The context must run from start() until stop() returns; stop() must not be
  // called from its thread.
  boost::asio::io_context* engine_context = nullptr;
};

struct queue_summary {
  std::string name;
  queue_stats stats;
};

class host {
 public:
  using delivery_sink = std::function<void(std::vector<delivery>&&)>;

  // Opens (or creates) the data directory, recovers the log and replays it into
  // a fresh engine. Errors: the log's (io_error, data_corruption), the engine's.
  static result<std::unique_ptr<host>> open(io::file_system& fs, host_options opts,
                                            metrics::registry* registry = nullptr);
  ~host();  // stop()
  host(const host&) = delete;
  host& operator=(const host&) = delete;

  // Starts the engine and sync threads.
  void start();
  // Stops taking work, waits for the sync in flight, completes what is durable
  // and fails the rest with shutting_down, then joins the threads. Idempotent.
  void stop();

  // --- publishing (done runs once the whole batch is durable) ---
  void publish(std::vector<publish_request> batch,
               std::function<void(std::vector<result<publish_receipt>>)> done);
  void cancel(id128 id, std::function<void(status)> done);

  // --- topology (done after durable) ---
  void declare_queue(std::string name, queue_options options, std::function<void(status)> done);
  void declare_topic(std::string name, std::function<void(status)> done);
  void bind(std::string topic, std::string queue, std::function<void(status)> done);
  void declare_subscription(std::string topic, std::string app_id, queue_options options,
                            std::function<void(result<std::string>)> done);

  // --- consuming ---
  // Credit is granted, AMQP-style: a consumer receives at most as many
  // deliveries as it was granted in total (subscribe + add_credit); settling a
  // delivery (ack/nack) does not by itself grant more. (The engine limits
  // unsettled deliveries to granted - settled; a delivery whose lease expired
  // stops counting there, and the protocol server holds back anything beyond
  // the credit granted on the wire.)
  // `sink` receives batches of deliveries for this consumer (engine thread)
  // until unsubscribe() (in-flight deliveries are then redelivered to others).
  void subscribe(std::string queue, std::uint32_t credit, delivery_sink sink,
                 std::function<void(result<consumer_id>)> done);
  // `release_in_flight`: a graceful stop, its unsettled deliveries are given
  // back without counting an attempt (engine::unsubscribe).
  void unsubscribe(consumer_id consumer, std::function<void(status)> done = nullptr,
                   bool release_in_flight = false);
  void add_credit(consumer_id consumer, std::uint32_t credit,
                  std::function<void(status)> done = nullptr);
  // Acks need no durability wait: a lost ack means a redelivery, never a loss.
  // They start no fdatasync either (host_options::unawaited_sync_delay).
  void ack(std::vector<delivery_tag> tags, std::function<void(std::vector<status>)> done);
  // Fails a delivery: redelivered after `delay` (never earlier), or moved to the
  // dead-letter queue now when `dead_letter` (or when attempts are exhausted).
  void nack(delivery_tag tag, nanoseconds delay, bool dead_letter,
            std::function<void(status)> done);
  // Gives a delivery back unprocessed (consumer shutting down): ready again at
  // once, the attempt not counted.
  void release(delivery_tag tag, std::function<void(status)> done);

  // --- inspection and dead letters ---
  void list_queues(std::function<void(std::vector<queue_summary>)> done);
  void list_messages(std::string queue, std::size_t max,
                     std::function<void(result<std::vector<message_info>>)> done);
  void peek(std::string queue, id128 id, std::function<void(result<message>)> done);
  void replay_dead_letters(std::string dead_letter_queue, std::size_t max,
                           std::function<void(result<std::size_t>)> done);

  // Up to `max` messages of `queue` in delivery order, with their contents.
  void peek_messages(
      std::string queue, std::size_t max,
      std::function<void(result<std::vector<std::pair<message_info, message>>>)> done);
  // Named counters: queues, messages by state, log segments and bytes, durable end.
  void stats(std::function<void(std::vector<std::pair<std::string, std::uint64_t>>)> done);

  // For tests and metrics: the durable end of the log.
  std::uint64_t durable_end() const;

  // Writes a checkpoint now; `done` runs once it is in place (after the log is
  // durable up to its high-water). For tests and operators.
  void checkpoint(std::function<void(status)> done);
  // How open() recovered: the checkpoint's high-water it started from, or
  // nullopt for a replay of the whole log (no checkpoint, or a damaged one).
  std::optional<std::uint64_t> recovered_from_checkpoint() const;

 private:
  struct impl;
  explicit host(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace outrider::broker
