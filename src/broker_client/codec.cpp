#include "broker_client/codec.h"

#include <bit>
#include <cstring>
#include <fmt/format.h>

#include "base/crc32c.h"

namespace outrider::broker_client {
namespace {

static_assert(std::endian::native == std::endian::little, "the wire codec assumes little endian");

// Smallest encodings, for count() checks (see docs/formats/broker-protocol.md).
constexpr std::size_t string_min = 4;
constexpr std::size_t header_min = 2 * string_min;
constexpr std::size_t message_min = string_min + 16 + 8 + 4 + string_min;
constexpr std::size_t result_min = 16 + 2 + string_min;
constexpr std::size_t delivery_min = 8 + 16 + 4 + 8 + 8 + 4 + string_min;
constexpr std::size_t tag_min = 8;
constexpr std::size_t nack_min = 8 + 8 + 1;
constexpr std::size_t failure_min = 8 + 2 + string_min;
constexpr std::size_t queue_info_min = string_min + 4 * 8 + 4;
constexpr std::size_t peeked_min = 16 + 1 + 4 + 8 + 8 + 4 + string_min;
constexpr std::size_t stat_min = string_min + 8;
constexpr std::uint32_t max_list_items = 1U << 20;
constexpr std::uint16_t wire_ok = 0;

template <class T>
void append_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

std::uint32_t load_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t frame_crc(std::string_view covered) {
  return crc32c_mask(crc32c(std::as_bytes(std::span<const char>(covered.data(), covered.size()))));
}

error protocol(std::string message) {
  return error(errc::protocol_error, std::move(message));
}

std::int64_t to_ns(wall_time t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

void put_headers(frame_builder& b, const header_list& headers) {
  b.put_u32(static_cast<std::uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    b.put_string(name);
    b.put_string(value);
  }
}

header_list get_headers(payload_reader& r) {
  header_list out;
  const auto n = r.count(header_min, wire::max_headers_per_message);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    auto name = r.string();
    auto value = r.string();
    out.emplace_back(name, value);
  }
  return out;
}

void put_error_body(frame_builder& b, const error& e) {
  b.put_u16(static_cast<std::uint16_t>(e.code));
  b.put_string(e.message);
}

error get_error_body(payload_reader& r) {
  const auto code = r.u16();
  auto message = r.string();
  return error(errc_from_wire(code), std::string(message));
}

}  // namespace

bool wire::is_known_opcode(std::uint8_t value) noexcept {
  return (value >= 0x01 && value <= 0x06) || value == 0x10 || value == 0x11 ||
         (value >= 0x20 && value <= 0x27) || value == 0x30 || value == 0x31 ||
         (value >= 0x40 && value <= 0x47);
}

std::string_view wire::opcode_name(opcode op) noexcept {
  switch (op) {
    case opcode::hello: return "HELLO";
    case opcode::hello_ok: return "HELLO_OK";
    case opcode::ping: return "PING";
    case opcode::pong: return "PONG";
    case opcode::error: return "ERROR";
    case opcode::ok: return "OK";
    case opcode::publish: return "PUBLISH";
    case opcode::confirm: return "CONFIRM";
    case opcode::subscribe: return "SUBSCRIBE";
    case opcode::unsubscribe: return "UNSUBSCRIBE";
    case opcode::deliver: return "DELIVER";
    case opcode::credit: return "CREDIT";
    case opcode::ack: return "ACK";
    case opcode::nack: return "NACK";
    case opcode::settle_result: return "SETTLE_RESULT";
    case opcode::subscription_closed: return "SUBSCRIPTION_CLOSED";
    case opcode::cancel_scheduled: return "CANCEL_SCHEDULED";
    case opcode::declare: return "DECLARE";
    case opcode::list_queues: return "LIST_QUEUES";
    case opcode::queue_list: return "QUEUE_LIST";
    case opcode::peek: return "PEEK";
    case opcode::peek_result: return "PEEK_RESULT";
    case opcode::peek_id: return "PEEK_ID";
    case opcode::replay_dead_letters: return "REPLAY_DEAD_LETTERS";
    case opcode::stats: return "STATS";
    case opcode::stats_result: return "STATS_RESULT";
  }
  return "UNKNOWN";
}

errc errc_from_wire(std::uint16_t value) noexcept {
  for (const auto& row : error_catalog()) {
    if (static_cast<std::uint16_t>(row.code) == value) return row.code;
  }
  return errc::internal;
}

// ---- frames ----

result<std::optional<frame>> parse_frame(std::string_view buffer, std::size_t max_frame_bytes,
                                         std::size_t& consumed) {
  consumed = 0;
  if (buffer.size() < wire::length_size) return std::optional<frame>{};
  const std::uint32_t length = load_u32(buffer.data());
  if (length < wire::frame_min_length) {
    return protocol(
        fmt::format("frame length {} is below the minimum {}", length, wire::frame_min_length));
  }
  const std::size_t total = wire::length_size + static_cast<std::size_t>(length);
  if (total > max_frame_bytes) {
    return protocol(
        fmt::format("frame of {} bytes exceeds the limit of {} bytes", total, max_frame_bytes));
  }
  // Reject a bad opcode or version as soon as the header is in, before
  // waiting for (possibly megabytes of) payload.
  if (buffer.size() >= wire::header_size) {
    const auto version = static_cast<std::uint8_t>(buffer[wire::version_offset]);
    const auto op = static_cast<std::uint8_t>(buffer[wire::opcode_offset]);
    if (version < wire::min_supported_version || version > wire::max_supported_version) {
      return protocol(fmt::format("unsupported frame version {}", version));
    }
    if (!wire::is_known_opcode(op)) return protocol(fmt::format("unknown opcode 0x{:02x}", op));
  }
  if (buffer.size() < total) return std::optional<frame>{};
  const std::size_t crc_at = total - wire::crc_size;
  if (frame_crc(buffer.substr(0, crc_at)) != load_u32(buffer.data() + crc_at)) {
    return protocol("frame checksum mismatch");
  }
  frame f;
  f.version = static_cast<std::uint8_t>(buffer[wire::version_offset]);
  f.op = static_cast<wire::opcode>(buffer[wire::opcode_offset]);
  f.request_id = load_u32(buffer.data() + wire::request_id_offset);
  f.payload = buffer.substr(wire::header_size, crc_at - wire::header_size);
  consumed = total;
  return std::optional<frame>(f);
}

frame_builder::frame_builder(std::string& out, wire::opcode op, std::uint32_t request_id,
                             std::uint8_t version)
    : out_(out), start_(out.size()) {
  append_le<std::uint32_t>(out_, 0);  // length, patched by finish()
  out_.push_back(static_cast<char>(version));
  out_.push_back(static_cast<char>(op));
  append_le(out_, request_id);
}

void frame_builder::put_u8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
}
void frame_builder::put_u16(std::uint16_t v) {
  append_le(out_, v);
}
void frame_builder::put_u32(std::uint32_t v) {
  append_le(out_, v);
}
void frame_builder::put_u64(std::uint64_t v) {
  append_le(out_, v);
}
void frame_builder::put_i64(std::int64_t v) {
  append_le(out_, v);
}
void frame_builder::put_id(const id128& id) {
  append_le(out_, id.high);
  append_le(out_, id.low);
}
void frame_builder::put_time(wall_time t) {
  put_i64(to_ns(t));
}
void frame_builder::put_string(std::string_view s) {
  append_le(out_, static_cast<std::uint32_t>(s.size()));
  out_.append(s);
}

std::size_t frame_builder::finish() {
  const std::size_t total = out_.size() - start_ + wire::crc_size;
  const auto length = static_cast<std::uint32_t>(total - wire::length_size);
  std::memcpy(out_.data() + start_, &length, sizeof length);
  const auto crc = frame_crc(std::string_view(out_).substr(start_));
  append_le(out_, crc);
  return total;
}

bool payload_reader::take(std::size_t n, const char*& p) {
  if (!ok_ || data_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  p = data_.data() + pos_;
  pos_ += n;
  return true;
}

#define OUTRIDER_READ_LE(type)          \
  const char* p = nullptr;              \
  if (!take(sizeof(type), p)) return 0; \
  type v;                               \
  std::memcpy(&v, p, sizeof v);         \
  return v

std::uint8_t payload_reader::u8() {
  OUTRIDER_READ_LE(std::uint8_t);
}
std::uint16_t payload_reader::u16() {
  OUTRIDER_READ_LE(std::uint16_t);
}
std::uint32_t payload_reader::u32() {
  OUTRIDER_READ_LE(std::uint32_t);
}
std::uint64_t payload_reader::u64() {
  OUTRIDER_READ_LE(std::uint64_t);
}
std::int64_t payload_reader::i64() {
  OUTRIDER_READ_LE(std::int64_t);
}
#undef OUTRIDER_READ_LE

id128 payload_reader::id() {
  id128 v;
  v.high = u64();
  v.low = u64();
  return v;
}

wall_time payload_reader::time() {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(nanoseconds(i64())));
}

std::string_view payload_reader::string() {
  const auto n = u32();
  const char* p = nullptr;
  if (!take(n, p)) return {};
  return {p, n};
}

std::uint32_t payload_reader::count(std::size_t min_item_bytes, std::uint32_t limit) {
  const auto n = u32();
  if (!ok_) return 0;
  if (n > limit || static_cast<std::uint64_t>(n) * min_item_bytes > remaining()) {
    ok_ = false;
    return 0;
  }
  return n;
}

status payload_reader::finish(std::string_view what) const {
  if (!ok_) return protocol(fmt::format("truncated or inconsistent {} payload", what));
  if (remaining() != 0) {
    return protocol(fmt::format("{} payload has {} trailing bytes", what, remaining()));
  }
  return {};
}

// ---- encoders ----

void encode_hello(std::string& out, std::uint32_t request_id, const hello& v) {
  frame_builder b(out, wire::opcode::hello, request_id);
  b.put_u8(v.min_version);
  b.put_u8(v.max_version);
  b.put_string(v.client_name);
  b.finish();
}

void encode_hello_ok(std::string& out, std::uint32_t request_id, const hello_ok& v) {
  frame_builder b(out, wire::opcode::hello_ok, request_id);
  b.put_u8(v.version);
  b.put_u32(v.max_frame_bytes);
  b.put_u32(v.max_body_bytes);
  b.put_u32(v.max_batch_messages);
  b.put_string(v.server_name);
  b.finish();
}

void encode_ping(std::string& out, std::uint32_t request_id) {
  frame_builder(out, wire::opcode::ping, request_id).finish();
}

void encode_pong(std::string& out, std::uint32_t request_id) {
  frame_builder(out, wire::opcode::pong, request_id).finish();
}

void encode_error(std::string& out, std::uint32_t request_id, const error& e) {
  frame_builder b(out, wire::opcode::error, request_id);
  put_error_body(b, e);
  b.finish();
}

void encode_ok(std::string& out, std::uint32_t request_id, std::uint64_t value) {
  frame_builder b(out, wire::opcode::ok, request_id);
  b.put_u64(value);
  b.finish();
}

void encode_publish(std::string& out, std::uint32_t request_id,
                    std::span<const outgoing_message> messages) {
  // The frame's size up front: grown from empty, a 1 KiB publish moved through
  // six allocations and copies on its way to ~1.3 KiB.
  std::size_t size = 4 + 1 + 1 + 4 + 4 + wire::crc_size;  // length, version, op, id, count, crc
  for (const auto& m : messages) {
    size += 4 + m.destination.size() + 16 + 8 + 4 + 4 + m.body.size();
    for (const auto& [name, value] : m.headers) size += 8 + name.size() + value.size();
  }
  out.reserve(out.size() + size);
  frame_builder b(out, wire::opcode::publish, request_id);
  b.put_u32(static_cast<std::uint32_t>(messages.size()));
  for (const auto& m : messages) {
    b.put_string(m.destination);
    b.put_id(m.id);
    b.put_time(m.deliver_at);
    put_headers(b, m.headers);
    b.put_string(m.body);
  }
  b.finish();
}

void encode_confirm(std::string& out, std::uint32_t request_id,
                    std::span<const publish_result> results) {
  frame_builder b(out, wire::opcode::confirm, request_id);
  b.put_u32(static_cast<std::uint32_t>(results.size()));
  for (const auto& r : results) {
    b.put_id(r.id);
    if (r.outcome) {
      b.put_u16(wire_ok);
      b.put_string({});
    } else {
      put_error_body(b, r.outcome.error());
    }
  }
  b.finish();
}

void encode_subscribe(std::string& out, std::uint32_t request_id, const subscribe_request& v) {
  frame_builder b(out, wire::opcode::subscribe, request_id);
  b.put_string(v.queue);
  b.put_u32(v.credit);
  b.put_i64(v.lease.count());
  b.finish();
}

void encode_unsubscribe(std::string& out, std::uint32_t request_id, subscription_id sub) {
  frame_builder b(out, wire::opcode::unsubscribe, request_id);
  b.put_u64(sub);
  b.finish();
}

void encode_deliver(std::string& out, subscription_id sub, std::span<const delivery> deliveries) {
  frame_builder b(out, wire::opcode::deliver, 0);
  b.put_u64(sub);
  b.put_u32(static_cast<std::uint32_t>(deliveries.size()));
  for (const auto& d : deliveries) {
    b.put_u64(d.tag);
    b.put_id(d.id);
    b.put_u32(d.attempt);
    b.put_time(d.deliver_at);
    b.put_time(d.published_at);
    put_headers(b, d.headers);
    b.put_string(d.body);
  }
  b.finish();
}

void encode_credit(std::string& out, std::uint32_t request_id, subscription_id sub,
                   std::uint32_t credit) {
  frame_builder b(out, wire::opcode::credit, request_id);
  b.put_u64(sub);
  b.put_u32(credit);
  b.finish();
}

void encode_ack(std::string& out, std::uint32_t request_id, std::span<const delivery_tag> tags) {
  frame_builder b(out, wire::opcode::ack, request_id);
  b.put_u32(static_cast<std::uint32_t>(tags.size()));
  for (auto t : tags) b.put_u64(t);
  b.finish();
}

void encode_nack(std::string& out, std::uint32_t request_id, std::span<const nack_entry> entries) {
  frame_builder b(out, wire::opcode::nack, request_id);
  b.put_u32(static_cast<std::uint32_t>(entries.size()));
  for (const auto& e : entries) {
    b.put_u64(e.tag);
    b.put_i64(e.redeliver_after.count());
    b.put_u8(static_cast<std::uint8_t>((e.dead_letter ? wire::nack_flag_dead_letter : 0) |
                                       (e.release ? wire::nack_flag_release : 0)));
  }
  b.finish();
}

void encode_settle_result(std::string& out, std::uint32_t request_id,
                          std::span<const settle_failure> failures) {
  frame_builder b(out, wire::opcode::settle_result, request_id);
  b.put_u32(static_cast<std::uint32_t>(failures.size()));
  for (const auto& f : failures) {
    b.put_u64(f.tag);
    put_error_body(b, f.err);
  }
  b.finish();
}

void encode_subscription_closed(std::string& out, subscription_id sub, const error& reason) {
  frame_builder b(out, wire::opcode::subscription_closed, 0);
  b.put_u64(sub);
  put_error_body(b, reason);
  b.finish();
}

void encode_cancel_scheduled(std::string& out, std::uint32_t request_id, const id128& id) {
  frame_builder b(out, wire::opcode::cancel_scheduled, request_id);
  b.put_id(id);
  b.finish();
}

void encode_declare(std::string& out, std::uint32_t request_id, const declare_request& v) {
  frame_builder b(out, wire::opcode::declare, request_id);
  b.put_u8(static_cast<std::uint8_t>(v.kind));
  b.put_string(v.name);
  switch (v.kind) {
    case wire::declare_kind::queue:
      b.put_u32(v.queue.max_attempts);
      b.put_string(v.queue.dead_letter_queue);
      b.put_i64(v.queue.lease.count());
      break;
    case wire::declare_kind::topic: break;
    case wire::declare_kind::binding: b.put_string(v.bound_queue); break;
  }
  b.finish();
}

void encode_list_queues(std::string& out, std::uint32_t request_id) {
  frame_builder(out, wire::opcode::list_queues, request_id).finish();
}

void encode_queue_list(std::string& out, std::uint32_t request_id,
                       std::span<const queue_info> queues) {
  frame_builder b(out, wire::opcode::queue_list, request_id);
  b.put_u32(static_cast<std::uint32_t>(queues.size()));
  for (const auto& q : queues) {
    b.put_string(q.name);
    b.put_u64(q.ready);
    b.put_u64(q.in_flight);
    b.put_u64(q.scheduled);
    b.put_u64(q.dead_letters);
    b.put_u32(q.consumers);
  }
  b.finish();
}

void encode_peek(std::string& out, std::uint32_t request_id, const peek_request& v) {
  frame_builder b(out, wire::opcode::peek, request_id);
  b.put_string(v.queue);
  b.put_u32(v.max);
  b.finish();
}

void encode_peek_id(std::string& out, std::uint32_t request_id, const peek_request& v) {
  frame_builder b(out, wire::opcode::peek_id, request_id);
  b.put_string(v.queue);
  b.put_id(v.id);
  b.finish();
}

void encode_peek_result(std::string& out, std::uint32_t request_id,
                        std::span<const peeked_message> messages) {
  frame_builder b(out, wire::opcode::peek_result, request_id);
  b.put_u32(static_cast<std::uint32_t>(messages.size()));
  for (const auto& m : messages) {
    b.put_id(m.id);
    b.put_u8(static_cast<std::uint8_t>(m.state));
    b.put_u32(m.failed_attempts);
    b.put_time(m.deliver_at);
    b.put_time(m.published_at);
    put_headers(b, m.headers);
    b.put_string(m.body);
  }
  b.finish();
}

void encode_replay_dead_letters(std::string& out, std::uint32_t request_id,
                                const replay_request& v) {
  frame_builder b(out, wire::opcode::replay_dead_letters, request_id);
  b.put_string(v.dead_letter_queue);
  b.put_u32(v.max);
  b.finish();
}

void encode_stats(std::string& out, std::uint32_t request_id) {
  frame_builder(out, wire::opcode::stats, request_id).finish();
}

void encode_stats_result(std::string& out, std::uint32_t request_id, const stat_list& stats) {
  frame_builder b(out, wire::opcode::stats_result, request_id);
  b.put_u32(static_cast<std::uint32_t>(stats.size()));
  for (const auto& [name, value] : stats) {
    b.put_string(name);
    b.put_u64(value);
  }
  b.finish();
}

// ---- decoders ----

result<hello> decode_hello(std::string_view payload) {
  payload_reader r(payload);
  hello v;
  v.min_version = r.u8();
  v.max_version = r.u8();
  v.client_name = std::string(r.string());
  OUTRIDER_TRY(r.finish("HELLO"));
  return v;
}

result<hello_ok> decode_hello_ok(std::string_view payload) {
  payload_reader r(payload);
  hello_ok v;
  v.version = r.u8();
  v.max_frame_bytes = r.u32();
  v.max_body_bytes = r.u32();
  v.max_batch_messages = r.u32();
  v.server_name = std::string(r.string());
  OUTRIDER_TRY(r.finish("HELLO_OK"));
  return v;
}

status decode_error(std::string_view payload, error& out) {
  payload_reader r(payload);
  auto e = get_error_body(r);
  OUTRIDER_TRY(r.finish("ERROR"));
  out = std::move(e);
  return {};
}

result<std::uint64_t> decode_ok(std::string_view payload) {
  payload_reader r(payload);
  const auto v = r.u64();
  OUTRIDER_TRY(r.finish("OK"));
  return v;
}

result<std::shared_ptr<const publish_batch>> decode_publish(std::string_view payload) {
  auto batch = std::make_shared<publish_batch>();
  batch->payload.assign(payload);
  payload_reader r(batch->payload);
  const auto n = r.count(message_min, wire::max_batch_messages);
  batch->messages.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    message_view m;
    m.destination = r.string();
    m.id = r.id();
    m.deliver_at = r.time();
    m.first_header = static_cast<std::uint32_t>(batch->headers.size());
    m.header_count = r.count(header_min, wire::max_headers_per_message);
    for (std::uint32_t h = 0; h < m.header_count && r.ok(); ++h) {
      header_view hv;
      hv.name = r.string();
      hv.value = r.string();
      batch->headers.push_back(hv);
    }
    m.body = r.string();
    batch->messages.push_back(m);
  }
  OUTRIDER_TRY(r.finish("PUBLISH"));
  if (batch->messages.empty()) return protocol("PUBLISH batch is empty");
  return std::shared_ptr<const publish_batch>(std::move(batch));
}

result<std::vector<publish_result>> decode_confirm(std::string_view payload) {
  payload_reader r(payload);
  std::vector<publish_result> out;
  const auto n = r.count(result_min, wire::max_batch_messages);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    publish_result pr;
    pr.id = r.id();
    const auto code = r.u16();
    auto message = r.string();
    if (code != wire_ok) pr.outcome = error(errc_from_wire(code), std::string(message));
    out.push_back(std::move(pr));
  }
  OUTRIDER_TRY(r.finish("CONFIRM"));
  return out;
}

result<subscribe_request> decode_subscribe(std::string_view payload) {
  payload_reader r(payload);
  subscribe_request v;
  v.queue = std::string(r.string());
  v.credit = r.u32();
  v.lease = nanoseconds(r.i64());
  OUTRIDER_TRY(r.finish("SUBSCRIBE"));
  return v;
}

result<subscription_id> decode_unsubscribe(std::string_view payload) {
  payload_reader r(payload);
  const auto v = r.u64();
  OUTRIDER_TRY(r.finish("UNSUBSCRIBE"));
  return v;
}

result<std::vector<delivery>> decode_deliver(std::string_view payload) {
  payload_reader r(payload);
  const auto sub = r.u64();
  std::vector<delivery> out;
  const auto n = r.count(delivery_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    delivery d;
    d.subscription = sub;
    d.tag = r.u64();
    d.id = r.id();
    d.attempt = r.u32();
    d.deliver_at = r.time();
    d.published_at = r.time();
    d.headers = get_headers(r);
    d.body = std::string(r.string());
    out.push_back(std::move(d));
  }
  OUTRIDER_TRY(r.finish("DELIVER"));
  return out;
}

result<std::pair<subscription_id, std::uint32_t>> decode_credit(std::string_view payload) {
  payload_reader r(payload);
  const auto sub = r.u64();
  const auto credit = r.u32();
  OUTRIDER_TRY(r.finish("CREDIT"));
  return std::make_pair(sub, credit);
}

result<std::vector<delivery_tag>> decode_ack(std::string_view payload) {
  payload_reader r(payload);
  std::vector<delivery_tag> out;
  const auto n = r.count(tag_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) out.push_back(r.u64());
  OUTRIDER_TRY(r.finish("ACK"));
  return out;
}

result<std::vector<nack_entry>> decode_nack(std::string_view payload) {
  payload_reader r(payload);
  std::vector<nack_entry> out;
  const auto n = r.count(nack_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    nack_entry e;
    e.tag = r.u64();
    e.redeliver_after = nanoseconds(r.i64());
    const auto flags = r.u8();
    if ((flags & ~wire::nack_flags_known) != 0) {
      return protocol(fmt::format("NACK flags {:#x} has unknown bits", flags));
    }
    e.dead_letter = (flags & wire::nack_flag_dead_letter) != 0;
    e.release = (flags & wire::nack_flag_release) != 0;
    if (e.dead_letter && e.release) {
      return protocol("NACK entry both dead-letters and releases");
    }
    out.push_back(e);
  }
  OUTRIDER_TRY(r.finish("NACK"));
  return out;
}

result<std::vector<settle_failure>> decode_settle_result(std::string_view payload) {
  payload_reader r(payload);
  std::vector<settle_failure> out;
  const auto n = r.count(failure_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    settle_failure f;
    f.tag = r.u64();
    f.err = get_error_body(r);
    out.push_back(std::move(f));
  }
  OUTRIDER_TRY(r.finish("SETTLE_RESULT"));
  return out;
}

result<subscription_id> decode_subscription_closed(std::string_view payload, error& reason) {
  payload_reader r(payload);
  const auto sub = r.u64();
  auto e = get_error_body(r);
  OUTRIDER_TRY(r.finish("SUBSCRIPTION_CLOSED"));
  reason = std::move(e);
  return sub;
}

result<id128> decode_cancel_scheduled(std::string_view payload) {
  payload_reader r(payload);
  const auto id = r.id();
  OUTRIDER_TRY(r.finish("CANCEL_SCHEDULED"));
  return id;
}

result<declare_request> decode_declare(std::string_view payload) {
  payload_reader r(payload);
  declare_request v;
  const auto kind = r.u8();
  v.name = std::string(r.string());
  switch (kind) {
    case static_cast<std::uint8_t>(wire::declare_kind::queue):
      v.kind = wire::declare_kind::queue;
      v.queue.max_attempts = r.u32();
      v.queue.dead_letter_queue = std::string(r.string());
      v.queue.lease = nanoseconds(r.i64());
      break;
    case static_cast<std::uint8_t>(wire::declare_kind::topic):
      v.kind = wire::declare_kind::topic;
      break;
    case static_cast<std::uint8_t>(wire::declare_kind::binding):
      v.kind = wire::declare_kind::binding;
      v.bound_queue = std::string(r.string());
      break;
    default:
      if (r.ok()) return protocol(fmt::format("DECLARE kind {} is unknown", kind));
  }
  OUTRIDER_TRY(r.finish("DECLARE"));
  return v;
}

result<std::vector<queue_info>> decode_queue_list(std::string_view payload) {
  payload_reader r(payload);
  std::vector<queue_info> out;
  const auto n = r.count(queue_info_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    queue_info q;
    q.name = std::string(r.string());
    q.ready = r.u64();
    q.in_flight = r.u64();
    q.scheduled = r.u64();
    q.dead_letters = r.u64();
    q.consumers = r.u32();
    out.push_back(std::move(q));
  }
  OUTRIDER_TRY(r.finish("QUEUE_LIST"));
  return out;
}

result<peek_request> decode_peek(std::string_view payload) {
  payload_reader r(payload);
  peek_request v;
  v.queue = std::string(r.string());
  v.max = r.u32();
  OUTRIDER_TRY(r.finish("PEEK"));
  return v;
}

result<peek_request> decode_peek_id(std::string_view payload) {
  payload_reader r(payload);
  peek_request v;
  v.queue = std::string(r.string());
  v.id = r.id();
  OUTRIDER_TRY(r.finish("PEEK_ID"));
  if (v.id.is_zero()) return protocol("PEEK_ID of the zero message id");
  return v;
}

result<std::vector<peeked_message>> decode_peek_result(std::string_view payload) {
  payload_reader r(payload);
  std::vector<peeked_message> out;
  const auto n = r.count(peeked_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    peeked_message m;
    m.id = r.id();
    const auto state = r.u8();
    if (state > static_cast<std::uint8_t>(peeked_state::scheduled)) {
      return protocol(fmt::format("PEEK_RESULT message state {} is unknown", state));
    }
    m.state = static_cast<peeked_state>(state);
    m.failed_attempts = r.u32();
    m.deliver_at = r.time();
    m.published_at = r.time();
    m.headers = get_headers(r);
    m.body = std::string(r.string());
    out.push_back(std::move(m));
  }
  OUTRIDER_TRY(r.finish("PEEK_RESULT"));
  return out;
}

result<replay_request> decode_replay_dead_letters(std::string_view payload) {
  payload_reader r(payload);
  replay_request v;
  v.dead_letter_queue = std::string(r.string());
  v.max = r.u32();
  OUTRIDER_TRY(r.finish("REPLAY_DEAD_LETTERS"));
  return v;
}

result<stat_list> decode_stats_result(std::string_view payload) {
  payload_reader r(payload);
  stat_list out;
  const auto n = r.count(stat_min, max_list_items);
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    auto name = r.string();
    const auto value = r.u64();
    out.emplace_back(std::string(name), value);
  }
  OUTRIDER_TRY(r.finish("STATS_RESULT"));
  return out;
}

status decode_empty(std::string_view payload, std::string_view what) {
  return payload_reader(payload).finish(what);
}

}  // namespace outrider::broker_client
