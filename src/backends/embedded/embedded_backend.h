// embedded_backend: the `embedded` pub/sub backend, a client of `outrider
// broker` over its binary protocol (broker_client::client).
//
// Topic model on the broker:
//  - a pub/sub topic T is a broker topic T (declared on first publish or
//    subscribe; publishing to a topic nobody subscribes to stores nothing);
//  - subscribe({T, app}) declares the queue "T.app" (max_attempts and lease
//    from the spec, dead-letter queue "T.app.dlq") and binds it to T, so the
//    subscription is durable from then on; several subscribers with the same
//    app id share the queue and compete;
//  - settle: ack -> ACK, retry_after -> NACK(redeliver after), dead_letter ->
//    NACK(dead-letter), release -> NACK(release: no attempt counted);
//    unsubscribe (UNSUBSCRIBE) gives unsettled deliveries back uncounted.
//
// Connection: one broker connection, opened in the background at creation and
// re-opened with exponential backoff whenever it drops. While it is down,
// publish/subscribe/cancel/health fail with `unavailable`; publishes in flight
// when it drops fail with `unavailable` (never silently lost: the caller may
// publish again with the same id); deliveries of the lost connection can no
// longer be settled (delivery_not_found: the broker redelivers them); every
// subscription is re-established after reconnecting. Calls made while the
// first (or any) connect attempt is in progress wait for its outcome.
//
// Metadata (component `metadata:` map): address ("127.0.0.1:7450" or
// "unix:/path", default 127.0.0.1:7450), connectTimeout (duration, 2s),
// maxReconnectInterval (duration, 5s). Unknown keys are config_invalid.
//
// Threading: by default one private io_context run by one backend thread;
// every method may be called from any thread and is posted there; callbacks
// run on it (or, for calls refused after close(), on the caller's thread).
// Given a shared io_context instead (the registry factory passes the
// runtime's context 0: the sidecar's I/O thread), the backend has no thread of
// its own and everything runs on that context's thread, so a publish from a
// handler on it reaches the broker connection and its confirm comes back
// without a thread hop. close() is then called while that context runs (from
// another thread, which waits, or on the context's thread itself); the
// context must outlive the backend's pending handlers (they hold it).
//
// Deliveries apart (a `delivery_context` besides the shared one; the registry
// passes the sidecar's delivery runtime): subscriptions use a second broker
// connection run on that context, so subscribe, unsubscribe, settle and every
// on_delivery run there, and the DELIVER frames, the consumer's work on them
// (the sidecar's app calls) and the ACKs never queue behind or in front of
// the publishes and confirms on the shared context. Publish, cancel, peek
// and health use the first connection (health checks both). Each connection
// reconnects on its own; a delivery is settled on the connection it came on.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/registry.h"
#include "config/node.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::backends {

struct embedded_backend_options {
  std::string address = "127.0.0.1:7450";
  std::string client_name = "outrider-sidecar";
  nanoseconds connect_timeout = std::chrono::seconds(2);
  nanoseconds min_reconnect_interval = std::chrono::milliseconds(100);
  nanoseconds max_reconnect_interval = std::chrono::seconds(5);
  // A health() ping that gets no PONG within this reports unavailable.
  nanoseconds health_timeout = std::chrono::seconds(2);
};

class embedded_backend final : public backend {
 public:
  // Starts the backend thread and the first connect attempt; never blocks.
  explicit embedded_backend(embedded_backend_options options);
  // Runs on `shared_context` (see Threading above); no thread of its own.
  // With `delivery_context`, subscriptions get a connection of their own on
  // it (see "Deliveries apart" above).
  embedded_backend(embedded_backend_options options, boost::asio::io_context& shared_context,
                   boost::asio::io_context* delivery_context = nullptr);
  ~embedded_backend() override;  // close()
  embedded_backend(const embedded_backend&) = delete;
  embedded_backend& operator=(const embedded_backend&) = delete;

  std::string_view type() const override { return "embedded"; }
  void publish(std::vector<message> batch,
               callback<result<std::vector<publish_outcome>>> done) override;
  void cancel_scheduled(const id128& id, callback<status> done) override;
  void subscribe(subscription_spec spec, delivery_fn on_delivery,
                 callback<result<subscription_handle>> done) override;
  void unsubscribe(subscription_handle handle, callback<status> done) override;
  void settle(const settle_handle& handle, settle_action action, callback<status> done) override;
  void peek_pending(const std::string& topic, const std::string& app_id, const id128& id,
                    callback<result<std::optional<message>>> done) override;
  void health(callback<status> done) override;
  void close() override;

  // The broker queue of the subscription (topic, app id): "<topic>.<app id>".
  static std::string queue_name(std::string_view topic, std::string_view app_id);

  struct impl;

  // The client name of the subscriptions' connection when deliveries are apart.
  static std::string delivery_client_name(std::string_view client_name);

 private:
  static void close_impl(const std::shared_ptr<impl>& m);

  std::shared_ptr<impl> impl_;  // publish, cancel_scheduled, peek_pending, health
  std::shared_ptr<impl> subs_;  // subscriptions: impl_, or a connection of their own
};

// Parses the component metadata into options. Errors: config_invalid naming
// the key.
result<embedded_backend_options> parse_embedded_backend_options(const config::node& metadata);

// The registry factory ("embedded").
result<std::unique_ptr<backend>> make_embedded_backend(const config::node& metadata,
                                                       const backend_context& context);

}  // namespace outrider::backends
