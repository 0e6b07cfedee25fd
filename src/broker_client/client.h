// client: the C++ client of the embedded broker's binary protocol
// (docs/formats/broker-protocol.md). Used by the sidecar and the benchmarks.
//
//   auto c = broker_client::client::create(ctx, {.address = "unix:/run/outrider/broker.sock"});
//   c->connect([](status s) { ... });
//   c->publish({msg1, msg2}, [](result<std::vector<publish_result>> r) { ... });  // once durable
//   c->subscribe({"orders", 256}, on_delivery, [](result<subscription_id> id) { ... });
//   c->ack({tag}, nullptr);  // the credit is topped up automatically
//
// Pipelining: every call sends its frame at once (coalesced with other frames
// queued in the same turn of the io_context) and does not wait for earlier
// answers. Acks without a callback are merged: those made in one turn (e.g. one
// per delivery of a DELIVER frame) go out as one ACK frame, before any later
// frame. Publishes: at most `max_in_flight_batches` PUBLISH frames await
// their CONFIRM; further batches wait in a local queue, in order, and go out
// as confirms arrive; a batch that finds `max_queued_batches` already waiting
// fails at once with resource_exhausted (the caller's signal to slow down).
//
// Order of callbacks: within the bytes of one read from the socket, answers
// (CONFIRM, OK, ...) are handled before the unsolicited frames (DELIVER,
// SUBSCRIPTION_CLOSED); each kind keeps its order. So a publish confirmed in the
// same read as a batch of deliveries completes before `on_delivery` runs for
// them, and a consumer's work on deliveries does not delay it.
//
// Flow control: a subscription starts with `credit`; each delivery consumes
// one; with auto_credit (the default) every ack/nack gives back one credit to
// the delivery's subscription (sent in the same write as the ack), so at most
// `credit` deliveries are ever unsettled. Without it, call add_credit().
//
// Errors: calls made before connect() succeeded or after the connection is
// lost fail with `unavailable`; when the connection drops, every pending call
// (and queued publish) fails with `unavailable` and the disconnect handler
// runs once. Reconnecting is the caller's job (create a new client). Request
// failures reported by the broker arrive as that call's error; publishes have
// one status per message.
//
// Threading: the client lives on one io_context, which must be run by exactly
// one thread. Public methods may be called from any thread (they are
// dispatched onto the io_context; on its thread they run inline). Every
// callback runs on the io_context's thread. All mutable state is in the impl,
// touched only on that thread. Plain Asio, no Beast.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "broker_client/codec.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::broker_client {

struct client_options {
  std::string address = "127.0.0.1:7450";  // host:port or unix:/path
  std::string client_name = "outrider";
  std::size_t max_in_flight_batches = 64;
  std::size_t max_queued_batches = 1024;
  bool auto_credit = true;
  // Largest frame accepted from the broker.
  std::size_t max_frame_bytes = wire::default_max_frame_bytes;
  nanoseconds connect_timeout = std::chrono::seconds(10);
  // A PING goes out after this long without sending anything (keeps the
  // broker's idle timeout from closing a quiet connection). 0 disables.
  nanoseconds keepalive_interval = std::chrono::seconds(20);
};

template <class T>
using callback = std::function<void(T)>;

class client {
 public:
  // `ctx` must outlive the client.
  static std::shared_ptr<client> create(boost::asio::io_context& ctx, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Connects and exchanges HELLO. Errors: invalid_argument (bad address),
  // unavailable (refused, unreachable, closed), deadline_exceeded,
  // protocol_version_unsupported, protocol_error.
  void connect(callback<status> done);
  // The broker's HELLO_OK (valid after connect succeeded).
  const hello_ok& server_info() const;
  bool connected() const;
  // Runs once when an established connection ends (not after close()).
  void on_disconnect(callback<error> handler);
  // Closes the connection; pending calls fail with `cancelled`. Idempotent.
  void close();

  // Publishes a batch; `done` gets one result per message once the broker
  // holds them durably (or their errors). Local errors for the whole batch:
  // invalid_argument (empty, or more than the broker's max_batch_messages),
  // message_too_large (the frame exceeds the broker's max_frame_bytes),
  // resource_exhausted (queue full, see above), unavailable.
  void publish(std::vector<outgoing_message> batch,
               callback<result<std::vector<publish_result>>> done);

  // `on_delivery` runs for each delivery, in order. Errors: queue_not_found,
  // invalid_argument (credit 0).
  void subscribe(subscribe_request request, callback<delivery> on_delivery,
                 callback<result<subscription_id>> done);
  void unsubscribe(subscription_id subscription, callback<status> done);
  // Fire and forget; an error (unknown subscription) is logged.
  void add_credit(subscription_id subscription, std::uint32_t credit);
  // `done` (may be null) gets the tags that could not be settled.
  void ack(std::vector<delivery_tag> tags, callback<result<std::vector<settle_failure>>> done);
  void nack(std::vector<nack_entry> entries, callback<result<std::vector<settle_failure>>> done);

  void cancel_scheduled(const id128& id, callback<status> done);
  void declare_queue(std::string name, queue_settings settings, callback<status> done);
  void declare_topic(std::string name, callback<status> done);
  void bind(std::string topic, std::string queue, callback<status> done);

  void list_queues(callback<result<std::vector<queue_info>>> done);
  void peek(std::string queue, std::uint32_t max,
            callback<result<std::vector<peeked_message>>> done);
  // The message `id` of `queue`, scheduled ones included: a list of 0 or 1.
  // A broker that predates PEEK_ID closes the connection (protocol error).
  void peek_id(std::string queue, const id128& id,
               callback<result<std::vector<peeked_message>>> done);
  // max 0: all. Returns how many were replayed.
  void replay_dead_letters(std::string dead_letter_queue, std::uint32_t max,
                           callback<result<std::uint64_t>> done);
  void stats(callback<result<stat_list>> done);
  void ping(callback<status> done);

  // Introspection for tests and metrics (io_context thread only).
  std::size_t in_flight_batches_for_test() const;
  std::size_t queued_batches_for_test() const;

 private:
  struct impl;
  explicit client(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;
};

}  // namespace outrider::broker_client
