// rabbitmq_backend: the `rabbitmq` pub/sub backend, on RabbitMQ (AMQP 0-9-1)
// through Debian's librabbitmq (rabbitmq-c). Design and costs: docs/rabbitmq.md.
//
// Topology (Dapr's model):
//  - topic T -> durable fanout exchange "T" (declared on first publish or
//    subscribe);
//  - subscription (T, app) -> durable queue "app-T" bound to T (quorum by
//    default, classic selectable), its dead letters in queue "app-T-dlq";
//  - publishes are persistent and succeed only once the broker confirmed them
//    (publisher confirms); deliveries are acked manually; the consumer's
//    prefetch (basic.qos) is the subscription's prefetch;
//  - retry_after, release, lease expiry and dead-lettering republish a copy
//    (attempt counted in the `outrider-attempt` header) and ack the original
//    once the copy is confirmed, so one poison message never blocks a queue;
//  - delayed delivery (and retry_after with a delay) goes through binary delay
//    levels: queue "outrider.delay.L" holds messages for 2^L units (per-queue
//    TTL, dead-lettered to level L-1), the routing key's bits pick the levels
//    a message waits in; the last hop ("outrider.delay.due") is consumed by
//    every backend, which re-checks `outrider-deliver-at` (never early: it
//    holds a message until due, or re-delays it) and the schedule journal
//    (stream "outrider.delay.journal": a record per delayed message and per
//    cancel, read by every backend, so any backend can cancel, across
//    restarts), then forwards it with a confirm.
//
// Messages: body = AMQP body; id = message-id (26-character id text);
// content-type header = content-type property; every other header
// (traceparent, tracestate, ...) is an AMQP header (application property,
// W3C Trace Context AMQP draft); the sidecar's CloudEvents travel in
// structured mode (content-type application/cloudevents+json) or, with
// cloud_events_binary, in binary mode (cloud_events_amqp.h).
//
// Connection: one AMQP connection owned by one backend thread (rabbitmq-c is
// blocking and not thread-safe), heartbeats, reconnects with exponential
// backoff. While it is down, publish/subscribe/cancel/health fail with
// `unavailable` (the sidecar answers 503 + Retry-After); publishes awaiting a
// confirm when it drops fail with `unavailable`; deliveries of the lost
// connection can no longer be settled (RabbitMQ redelivers them); every
// subscription is re-established after reconnecting.
//
// Threading: every method may be called from any thread; it queues a command
// for the backend thread; callbacks run on that thread (or, for calls refused
// after close(), on the caller's thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/registry.h"
#include "config/node.h"

namespace outrider::backends {

struct rabbitmq_backend_options {
  // amqp://user:password@host:port/vhost or amqps://... (TLS).
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";
  // Override the URL's credentials when set. Never logged.
  std::string username;
  std::string password;
  // TLS (amqps URLs): CA bundle, client certificate and key (PEM files).
  std::string ca_cert_file;
  std::string client_cert_file;
  std::string client_key_file;
  bool verify_peer = true;
  // Queue type of subscription queues and of the delay levels: quorum or classic.
  std::string queue_type = "quorum";
  std::string delay_queue_type = "quorum";
  std::string client_name = "outrider-sidecar";
  nanoseconds heartbeat = std::chrono::seconds(10);
  nanoseconds connect_timeout = std::chrono::seconds(3);
  nanoseconds min_reconnect_interval = std::chrono::milliseconds(100);
  nanoseconds max_reconnect_interval = std::chrono::seconds(5);
  // Lease of deliveries whose subscription gives none.
  nanoseconds default_lease = std::chrono::seconds(60);
  // Delay levels: level L waits 2^L units; 28 levels of 1 s reach 8.5 years
  // (longer delays take more rounds). The sub-unit rest is waited out by the
  // due-queue consumer, holding the (unacked) message.
  std::uint32_t delay_levels = 28;
  nanoseconds delay_unit = std::chrono::seconds(1);
  // Due messages one backend holds (unacked) at once.
  std::uint32_t due_prefetch = 2000;
  // A publish repeating the id of a message this backend published within
  // this window is refused with already_exists.
  nanoseconds dedupe_window = std::chrono::minutes(10);
  // Retention (x-max-age) of the schedule journal, the stream of scheduled and
  // cancelled ids. Records of messages due later are re-appended by the
  // keeper backend once older than half of it.
  nanoseconds journal_retention = std::chrono::hours(24 * 7);
  // CloudEvents (content-type application/cloudevents+json) in AMQP binary
  // mode (attributes as `cloudEvents:` application properties, the data as
  // the body) instead of structured mode. Received events are handed over
  // structured whichever mode they came in.
  bool cloud_events_binary = false;
};

class rabbitmq_backend final : public backend {
 public:
  // Starts the backend thread and the first connect attempt; never blocks.
  explicit rabbitmq_backend(rabbitmq_backend_options options);
  ~rabbitmq_backend() override;  // close()
  rabbitmq_backend(const rabbitmq_backend&) = delete;
  rabbitmq_backend& operator=(const rabbitmq_backend&) = delete;

  std::string_view type() const override { return "rabbitmq"; }
  void publish(std::vector<message> batch,
               callback<result<std::vector<publish_outcome>>> done) override;
  void cancel_scheduled(const id128& id, callback<status> done) override;
  void subscribe(subscription_spec spec, delivery_fn on_delivery,
                 callback<result<subscription_handle>> done) override;
  void unsubscribe(subscription_handle handle, callback<status> done) override;
  void settle(const settle_handle& handle, settle_action action, callback<status> done) override;
  void health(callback<status> done) override;
  void close() override;

  // The queue of the subscription (topic, app id): "<app id>-<topic>" (Dapr's name).
  static std::string queue_name(std::string_view topic, std::string_view app_id);
  // Its dead-letter queue: "<app id>-<topic>-dlq".
  static std::string dead_letter_queue_name(std::string_view topic, std::string_view app_id);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// Parses the component metadata into options. Errors: config_invalid naming the key.
result<rabbitmq_backend_options> parse_rabbitmq_backend_options(const config::node& metadata);

// The registry factory ("rabbitmq").
result<std::unique_ptr<backend>> make_rabbitmq_backend(const config::node& metadata,
                                                       const backend_context& context);

}  // namespace outrider::backends
