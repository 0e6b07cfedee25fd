// codec: encoding and decoding of broker protocol frames (wire_format.h,
// docs/formats/broker-protocol.md), shared by the client and the broker server.
//
// Encoding appends whole frames to a caller's std::string, so many frames can
// be coalesced into one write. Decoding never trusts input: every read is
// bounds-checked, counts are checked against what the payload can hold, and
// any violation is an errc::protocol_error naming what was wrong; nothing here
// asserts, throws or allocates more than the frame's own size on bad input.
//
// Threading: free functions and value types; no shared state.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/id.h"
#include "base/result.h"
#include "broker_client/wire_format.h"

namespace outrider::broker_client {

using subscription_id = std::uint64_t;
using delivery_tag = std::uint64_t;
using header_list = std::vector<std::pair<std::string, std::string>>;

// ---- protocol values (owning) ----

struct hello {
  std::uint8_t min_version = wire::min_supported_version;
  std::uint8_t max_version = wire::max_supported_version;
  std::string client_name;
};

struct hello_ok {
  std::uint8_t version = wire::protocol_version;
  std::uint32_t max_frame_bytes = 0;
  std::uint32_t max_body_bytes = 0;
  std::uint32_t max_batch_messages = 0;
  std::string server_name;
};

// A message to publish. deliver_at == wall_time{} (the epoch) means "now";
// a zero id asks the broker to assign one.
struct outgoing_message {
  std::string destination;  // queue or topic
  id128 id;
  header_list headers;
  std::string body;
  wall_time deliver_at{};
};

// The outcome of one published message: its (possibly broker-assigned) id and
// ok or the error that refused it.
struct publish_result {
  id128 id;
  status outcome;
};

struct delivery {
  subscription_id subscription = 0;
  delivery_tag tag = 0;
  id128 id;
  std::uint32_t attempt = 1;  // 1 on the first delivery
  header_list headers;
  std::string body;
  wall_time deliver_at{};
  wall_time published_at{};
};

struct subscribe_request {
  std::string queue;
  std::uint32_t credit = 0;  // deliveries the broker may send before more credit arrives
  nanoseconds lease{};       // 0: the queue's lease
};

struct nack_entry {
  delivery_tag tag = 0;
  nanoseconds redeliver_after{};  // ignored when dead_letter or release
  bool dead_letter = false;       // move to the dead-letter queue now
  // Give back unprocessed (consumer shutting down): ready again at once, the
  // attempt not counted. Not together with dead_letter.
  bool release = false;
};

struct settle_failure {
  delivery_tag tag = 0;
  error err;
};

struct queue_settings {
  std::uint32_t max_attempts = 0;  // 0: unlimited
  std::string dead_letter_queue;   // empty: "<queue>.dlq"
  nanoseconds lease{};             // 0: the broker's default
};

struct declare_request {
  wire::declare_kind kind = wire::declare_kind::queue;
  std::string name;         // queue or topic; for a binding, the topic
  queue_settings queue;     // kind == queue
  std::string bound_queue;  // kind == binding
};

struct queue_info {
  std::string name;
  std::uint64_t ready = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t scheduled = 0;
  std::uint64_t dead_letters = 0;  // ready messages in its dead-letter queue
  std::uint32_t consumers = 0;
};

enum class peeked_state : std::uint8_t { ready = 0, leased = 1, retry_wait = 2, scheduled = 3 };

struct peeked_message {
  id128 id;
  peeked_state state = peeked_state::ready;
  std::uint32_t failed_attempts = 0;
  header_list headers;
  std::string body;
  wall_time deliver_at{};
  wall_time published_at{};
};

struct peek_request {
  std::string queue;  // a queue or a dead-letter queue
  std::uint32_t max = 0;
  // PEEK_ID: the one message with this id (scheduled ones included); zero for PEEK.
  id128 id{};
};

struct replay_request {
  std::string dead_letter_queue;
  std::uint32_t max = 0;  // 0: all
};

using stat_list = std::vector<std::pair<std::string, std::uint64_t>>;

// ---- a decoded PUBLISH without a copy per message ----

struct header_view {
  std::string_view name;
  std::string_view value;
};

// Views into publish_batch::payload.
struct message_view {
  std::string_view destination;
  id128 id;
  wall_time deliver_at{};          // the epoch: now
  std::uint32_t first_header = 0;  // index into publish_batch::headers
  std::uint32_t header_count = 0;
  std::string_view body;
};

// One PUBLISH frame's messages: the payload bytes are copied once into
// `payload` and every message and header is a view into them, so a batch of
// any size costs three allocations. Immutable after decoding; not copyable
// (the views point into this object).
struct publish_batch {
  std::string payload;
  std::vector<message_view> messages;
  std::vector<header_view> headers;

  publish_batch() = default;
  publish_batch(const publish_batch&) = delete;
  publish_batch& operator=(const publish_batch&) = delete;

  std::span<const header_view> headers_of(const message_view& m) const {
    return std::span<const header_view>(headers).subspan(m.first_header, m.header_count);
  }
};

// ---- frames ----

// A complete, checksum-verified frame inside a receive buffer.
struct frame {
  std::uint8_t version = 0;
  wire::opcode op = wire::opcode::ping;
  std::uint32_t request_id = 0;
  std::string_view payload;  // view into the buffer given to parse_frame
};

// Parses the frame at the start of `buffer`. Returns nullopt when more bytes
// are needed (`buffer` holds only a prefix of a valid-so-far frame), else the
// frame and sets `consumed` to its size. Errors (protocol_error): a length
// below the minimum or above `max_frame_bytes`, a checksum mismatch, an
// unknown opcode, a version outside [min_supported_version, max_supported_version].
result<std::optional<frame>> parse_frame(std::string_view buffer, std::size_t max_frame_bytes,
                                         std::size_t& consumed);

// Appends one frame to `out`: begin(), the payload through the put_* calls,
// then finish() (writes length and checksum). One builder per frame.
class frame_builder {
 public:
  frame_builder(std::string& out, wire::opcode op, std::uint32_t request_id,
                std::uint8_t version = wire::protocol_version);
  void put_u8(std::uint8_t v);
  void put_u16(std::uint16_t v);
  void put_u32(std::uint32_t v);
  void put_u64(std::uint64_t v);
  void put_i64(std::int64_t v);
  void put_id(const id128& id);
  void put_time(wall_time t);
  void put_string(std::string_view s);  // u32 length + bytes
  // Completes the frame; returns its total size.
  std::size_t finish();

 private:
  std::string& out_;
  std::size_t start_;
};

// Reads a payload front to back with a sticky failure: after the first
// out-of-bounds read every getter returns zero/empty and ok() is false.
class payload_reader {
 public:
  explicit payload_reader(std::string_view payload) : data_(payload) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int64_t i64();
  id128 id();
  wall_time time();
  std::string_view string();
  // A count of items of at least `min_item_bytes` each: fails if the rest of
  // the payload cannot hold that many (so a forged count never drives a huge
  // allocation) or if it exceeds `limit`.
  std::uint32_t count(std::size_t min_item_bytes, std::uint32_t limit);

  bool ok() const noexcept { return ok_; }
  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  // ok() and every byte consumed; otherwise a protocol_error naming `what`.
  status finish(std::string_view what) const;

 private:
  bool take(std::size_t n, const char*& p);
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// An errc from its wire number: unknown numbers (a newer peer) become
// errc::internal so describe() is always safe.
errc errc_from_wire(std::uint16_t value) noexcept;

// ---- encoders: append one complete frame to `out` ----

void encode_hello(std::string& out, std::uint32_t request_id, const hello& v);
void encode_hello_ok(std::string& out, std::uint32_t request_id, const hello_ok& v);
void encode_ping(std::string& out, std::uint32_t request_id);
void encode_pong(std::string& out, std::uint32_t request_id);
void encode_error(std::string& out, std::uint32_t request_id, const error& e);
void encode_ok(std::string& out, std::uint32_t request_id, std::uint64_t value = 0);
void encode_publish(std::string& out, std::uint32_t request_id,
                    std::span<const outgoing_message> messages);
void encode_confirm(std::string& out, std::uint32_t request_id,
                    std::span<const publish_result> results);
void encode_subscribe(std::string& out, std::uint32_t request_id, const subscribe_request& v);
void encode_unsubscribe(std::string& out, std::uint32_t request_id, subscription_id sub);
void encode_deliver(std::string& out, subscription_id sub, std::span<const delivery> deliveries);
void encode_credit(std::string& out, std::uint32_t request_id, subscription_id sub,
                   std::uint32_t credit);
void encode_ack(std::string& out, std::uint32_t request_id, std::span<const delivery_tag> tags);
void encode_nack(std::string& out, std::uint32_t request_id, std::span<const nack_entry> entries);
void encode_settle_result(std::string& out, std::uint32_t request_id,
                          std::span<const settle_failure> failures);
void encode_subscription_closed(std::string& out, subscription_id sub, const error& reason);
void encode_cancel_scheduled(std::string& out, std::uint32_t request_id, const id128& id);
void encode_declare(std::string& out, std::uint32_t request_id, const declare_request& v);
void encode_list_queues(std::string& out, std::uint32_t request_id);
void encode_queue_list(std::string& out, std::uint32_t request_id,
                       std::span<const queue_info> queues);
void encode_peek(std::string& out, std::uint32_t request_id, const peek_request& v);
void encode_peek_result(std::string& out, std::uint32_t request_id,
                        std::span<const peeked_message> messages);
void encode_peek_id(std::string& out, std::uint32_t request_id, const peek_request& v);
void encode_replay_dead_letters(std::string& out, std::uint32_t request_id,
                                const replay_request& v);
void encode_stats(std::string& out, std::uint32_t request_id);
void encode_stats_result(std::string& out, std::uint32_t request_id, const stat_list& stats);

// ---- decoders: the payload of a frame of the matching opcode ----
// Errors: protocol_error (truncated, trailing bytes, counts over the limits).

result<hello> decode_hello(std::string_view payload);
result<hello_ok> decode_hello_ok(std::string_view payload);
// The ERROR payload into `out` (result<error> would be ambiguous).
status decode_error(std::string_view payload, error& out);
result<std::uint64_t> decode_ok(std::string_view payload);
result<std::shared_ptr<const publish_batch>> decode_publish(std::string_view payload);
result<std::vector<publish_result>> decode_confirm(std::string_view payload);
result<subscribe_request> decode_subscribe(std::string_view payload);
result<subscription_id> decode_unsubscribe(std::string_view payload);
result<std::vector<delivery>> decode_deliver(std::string_view payload);
result<std::pair<subscription_id, std::uint32_t>> decode_credit(std::string_view payload);
result<std::vector<delivery_tag>> decode_ack(std::string_view payload);
result<std::vector<nack_entry>> decode_nack(std::string_view payload);
result<std::vector<settle_failure>> decode_settle_result(std::string_view payload);
// The subscription id; the reason into `reason`.
result<subscription_id> decode_subscription_closed(std::string_view payload, error& reason);
result<id128> decode_cancel_scheduled(std::string_view payload);
result<declare_request> decode_declare(std::string_view payload);
result<std::vector<queue_info>> decode_queue_list(std::string_view payload);
result<peek_request> decode_peek(std::string_view payload);
result<std::vector<peeked_message>> decode_peek_result(std::string_view payload);
// PEEK_ID: queue and a non-zero id (zero is a protocol error).
result<peek_request> decode_peek_id(std::string_view payload);
result<replay_request> decode_replay_dead_letters(std::string_view payload);
result<stat_list> decode_stats_result(std::string_view payload);
// PING, PONG, LIST_QUEUES and STATS have an empty payload.
status decode_empty(std::string_view payload, std::string_view what);

}  // namespace outrider::broker_client
