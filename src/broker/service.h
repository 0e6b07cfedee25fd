// service: what the broker's protocol server (server.h) asks of the broker.
//
// The server decodes frames and calls one method per request; the broker host
// (engine + durable log + group commit + timers) implements it. Tests use an
// in-memory fake (fake_service_test_util.h).
//
// Threading contract:
//  - The server calls these methods from its I/O threads: calls for one
//    connection come from one thread, in the order of that connection's frames;
//    calls for different connections come from different threads at the same
//    time. Implementations must therefore be thread-safe, and must not block
//    (typical host: post the call to the engine thread and return).
//  - An implementation must preserve per-connection call order where it matters:
//    an ack() made before an add_credit() takes effect before it.
//  - Every completion is invoked exactly once, from any thread, possibly
//    synchronously inside the call. The server posts it back to the connection's
//    thread, so completions may be invoked after the connection has closed.
//  - A delivery_sink may be called from any thread, never before the subscribe
//    completion was invoked with its id, never after unsubscribe()'s completion.
//
// Durability: publish()'s completion means "durable" (fsynced) for every message
// whose result is ok; cancel_scheduled(), declare() and ack()/nack() complete
// once their records are durable too.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/id.h"
#include "base/result.h"
#include "broker_client/codec.h"

namespace outrider::broker {

namespace bc = broker_client;

template <class T>
using completion = std::function<void(T)>;

// Where a subscription's deliveries go. Implemented by the server (one per
// subscription); the service holds it as long as the subscription exists.
class delivery_sink {
 public:
  virtual ~delivery_sink() = default;
  // Hands over deliveries for the subscription. Each consumes one unit of the
  // subscription's credit; the service must not deliver more than the credit
  // granted so far (subscribe + add_credit) minus what it delivered. (The server
  // holds back any excess until credit arrives, so a violation delays but never
  // overruns the client.) Any thread.
  virtual void deliver(std::vector<bc::delivery> deliveries) = 0;
  // The service ended the subscription on its own (queue gone, shutdown). No
  // deliver() follows. Any thread.
  virtual void closed(const error& reason) = 0;
};

class service {
 public:
  virtual ~service() = default;

  // Publishes one batch. `done` gets one result per message of
  // batch->messages, in the same order: the message id (assigned if the
  // message had none) and ok once durable, or its error (queue_not_found,
  // message_too_large, already_exists, resource_exhausted, disk_full, io_error,
  // shutting_down, ...). The batch is immutable and shared; the service may
  // keep it as long as it likes. Messages are views into the batch: a batch of
  // any size costs the server three allocations (see bc::publish_batch).
  virtual void publish(std::shared_ptr<const bc::publish_batch> batch,
                       completion<std::vector<bc::publish_result>> done) = 0;

  // Adds a consumer on `request.queue` with `request.credit` credit (> 0; the
  // server refuses 0) and lease (0: the queue's). `done` gets the subscription
  // id (unique within the service) or queue_not_found / invalid_argument.
  virtual void subscribe(const bc::subscribe_request& request, std::shared_ptr<delivery_sink> sink,
                         completion<result<bc::subscription_id>> done) = 0;
  // Removes the consumer; its unacknowledged deliveries become available again.
  // The server calls it for every live subscription when a connection closes.
  // Errors: consumer_not_found.
  virtual void unsubscribe(bc::subscription_id subscription, completion<status> done) = 0;
  // An UNSUBSCRIBE from a live client (a graceful stop): as unsubscribe(), but
  // unacknowledged deliveries come back without counting a failed attempt.
  // Services without the distinction treat it as unsubscribe().
  virtual void unsubscribe_gracefully(bc::subscription_id subscription, completion<status> done) {
    unsubscribe(subscription, std::move(done));
  }
  // Adds `credit` deliveries to the subscription's allowance.
  // Errors: consumer_not_found, invalid_argument (0).
  virtual void add_credit(bc::subscription_id subscription, std::uint32_t credit,
                          completion<status> done) = 0;

  // Settles deliveries. `done` gets only the failures (delivery_not_found: the
  // lease expired, the message is or will be redelivered).
  virtual void ack(std::vector<bc::delivery_tag> tags,
                   completion<std::vector<bc::settle_failure>> done) = 0;
  virtual void nack(std::vector<bc::nack_entry> entries,
                    completion<std::vector<bc::settle_failure>> done) = 0;

  // Errors: message_not_found, message_not_scheduled.
  virtual void cancel_scheduled(const id128& id, completion<status> done) = 0;
  // Queue, topic or binding. Idempotent for equal options. Errors:
  // invalid_argument, already_exists, topic_not_found, queue_not_found.
  virtual void declare(const bc::declare_request& request, completion<status> done) = 0;

  // --- admin ---
  virtual void list_queues(completion<result<std::vector<bc::queue_info>>> done) = 0;
  // Up to request.max messages of a queue or dead-letter queue, in delivery order;
  // with a non-zero request.id (PEEK_ID), that message alone (scheduled ones
  // included), or none.
  virtual void peek(const bc::peek_request& request,
                    completion<result<std::vector<bc::peeked_message>>> done) = 0;
  // Moves up to request.max (0: all) dead letters back to their queue; returns how many.
  virtual void replay_dead_letters(const bc::replay_request& request,
                                   completion<result<std::uint64_t>> done) = 0;
  // Named counters (names are stable snake_case, e.g. "messages_published").
  virtual void stats(completion<result<bc::stat_list>> done) = 0;
};

}  // namespace outrider::broker
