// backend: the messaging backend interface every pub/sub implementation gives
// the sidecar (embedded broker, RabbitMQ, later NATS JetStream, Redis Streams,
// PostgreSQL). One conformance suite checks every implementation against the
// semantics below; mem_backend (testing/mem_backend.h) is the reference.
//
// Semantics (docs/ARCHITECTURE.md, DESIGN "Messaging semantics"):
//  - publish() completes successfully for a message only once the backend holds
//    it durably (fsync, publisher confirm, ...). A failed message was not
//    stored (or its outcome is unknown: the caller may publish it again with
//    the same id).
//  - Message ids are stable: the id given (or assigned, when zero) at publish
//    is the id of every delivery of that message, so apps can be idempotent.
//  - Topics fan out per subscribing app id: a durable subscription exists per
//    (topic, app id) from the first subscribe() on; every message published to
//    the topic afterwards reaches each such subscription once. Consumers of the
//    same (topic, app id) compete: each message goes to one of them.
//  - A delivery is leased to its consumer for `lease`; an unsettled delivery
//    whose lease expires, or whose consumer goes away, is redelivered (a failed
//    attempt, except after release()).
//  - settle(): ack (done), retry_after(delay) (redeliver no earlier than
//    `delay` from now, without holding back other messages: one poison
//    message never blocks the rest), dead_letter (move to the subscription's
//    dead-letter store now), release (give back without counting an attempt:
//    graceful shutdown). After `max_attempts` failed attempts a message is
//    dead-lettered by the backend itself.
//  - Delayed delivery: a message with deliver_at in the future is invisible
//    until then (any horizon; never early; survives restarts) and can be
//    cancelled by id until it comes due.
//  - Headers travel unchanged with the message (trace context:
//    traceparent/tracestate; content type; expiry).
//
// Threading: every method may be called from any thread. Completion callbacks
// (`done`) run exactly once, either on the calling thread before the call
// returns or later on a backend thread; on_delivery runs on a backend thread,
// never inside a call made by the subscriber. Callbacks must not block (post
// long work elsewhere) and run without any backend lock held, so they may
// call back into the backend. After close() returns no callback starts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/id.h"
#include "base/result.h"

namespace outrider::backends {

using header_list = std::vector<std::pair<std::string, std::string>>;

template <class T>
using callback = std::function<void(T)>;

// First value of header `name` (case-insensitive), or nullptr.
const std::string* find_header(const header_list& headers, std::string_view name);

struct message {
  std::string topic;
  id128 id;  // zero: the backend assigns a time-ordered id
  header_list headers;
  std::string body;
  wall_time deliver_at{};  // the epoch or a past time: deliver now
};

// The outcome of one published message: its id (assigned if it was zero) and
// ok or the error that refused it (already_exists for an id still pending,
// message_too_large, unavailable, ...).
struct publish_outcome {
  id128 id;
  status outcome;
};

struct subscription_spec {
  std::string topic;
  std::string app_id;  // the competing-consumer group
  // Failed attempts after which the backend dead-letters a message; 0: never.
  std::uint32_t max_attempts = 0;
  // How long a delivery stays leased to this consumer before redelivery; 0:
  // the backend's default.
  nanoseconds lease{};
  // Deliveries this consumer may hold unsettled at once (credit, prefetch).
  // REQUIRES: > 0.
  std::uint32_t prefetch = 1;
};

// Identifies one delivery for settle(). Opaque to the caller: each backend
// packs its own tags into it (broker delivery tag, AMQP delivery tag + channel).
struct settle_handle {
  std::uint64_t subscription = 0;
  std::uint64_t token = 0;
};

using subscription_handle = std::uint64_t;

struct delivery {
  settle_handle handle;
  std::string topic;
  id128 id;
  std::uint32_t attempt = 1;  // 1 on the first delivery; failed attempts + 1
  header_list headers;
  std::string body;
  wall_time published_at{};
};

struct settle_action {
  enum class kind : std::uint8_t { ack, retry, dead_letter, release };
  kind type = kind::ack;
  nanoseconds delay{};  // retry only

  static settle_action ack() { return {kind::ack, {}}; }
  static settle_action retry_after(nanoseconds d) { return {kind::retry, d}; }
  static settle_action dead_letter() { return {kind::dead_letter, {}}; }
  static settle_action release() { return {kind::release, {}}; }
};

class backend {
 public:
  using delivery_fn = std::function<void(delivery)>;

  virtual ~backend() = default;

  // The registered type name ("embedded", "rabbitmq", "mem").
  virtual std::string_view type() const = 0;

  // Publishes a batch; `done` gets one outcome per message, in order, once
  // each is durable or refused. Whole-batch errors: invalid_argument (empty),
  // unavailable (backend down), shutting_down (after close()).
  virtual void publish(std::vector<message> batch,
                       callback<result<std::vector<publish_outcome>>> done) = 0;

  // Cancels a message published with a future deliver_at. Errors:
  // message_not_found (unknown, already delivered or cancelled),
  // message_not_scheduled (due already), unavailable.
  virtual void cancel_scheduled(const id128& id, callback<status> done) = 0;

  // Creates the durable subscription for (topic, app id) if needed and starts
  // consuming: `on_delivery` is called for each delivery, at most
  // spec.prefetch unsettled at once. Errors: invalid_argument (empty topic or
  // app id, prefetch 0), unavailable.
  virtual void subscribe(subscription_spec spec, delivery_fn on_delivery,
                         callback<result<subscription_handle>> done) = 0;
  // Stops a consumer; its unsettled deliveries are released (redelivered to
  // other consumers without counting an attempt). The durable subscription
  // stays. Errors: consumer_not_found.
  virtual void unsubscribe(subscription_handle handle, callback<status> done) = 0;

  // Settles a delivery. `done` may be null. Errors: delivery_not_found (unknown
  // handle, already settled, or lease expired: the message is or will be
  // redelivered), unavailable.
  virtual void settle(const settle_handle& handle, settle_action action, callback<status> done) = 0;

  // Jobs capability (optional; the sidecar's jobs API needs it): reads the
  // pending message `id` of the subscription (topic, app id), whether
  // scheduled, ready or in flight, without changing it; nullopt when there is
  // none. Errors: unavailable; failed_precondition from a backend without the
  // capability (this default: RabbitMQ for now), naming the backend.
  virtual void peek_pending(const std::string& topic, const std::string& app_id, const id128& id,
                            callback<result<std::optional<message>>> done) {
    (void)topic;
    (void)app_id;
    (void)id;
    done(error(errc::failed_precondition,
               "the " + std::string(type()) +
                   " backend does not support jobs (it cannot read a scheduled message by id); "
                   "use the embedded broker for the jobs API"));
  }

  // ok when the backend can take publishes and deliver; unavailable otherwise.
  virtual void health(callback<status> done) = 0;

  // Stops consuming, fails pending calls with shutting_down, releases
  // connections. Blocks until no callback is running. Idempotent; must not be
  // called from a backend callback.
  virtual void close() = 0;
};

}  // namespace outrider::backends
