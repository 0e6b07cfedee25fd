// wire_format: constants of the embedded broker's binary protocol.
// The prose specification is docs/formats/broker-protocol.md; keep the two in step.
//
// Frame layout (all integers little-endian):
//
//   offset  size  field
//   0       4     length: bytes that follow this field (version .. crc), >= frame_min_length
//   4       1     version: protocol version of this frame's payload encoding
//   5       1     opcode
//   6       4     request id: chosen by the client, echoed in the answer; 0 = unsolicited
//   10      n     payload (opcode-specific)
//   10+n    4     crc: masked CRC-32C (base/crc32c.h) of bytes 0 .. 10+n (length included)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outrider::broker_client::wire {

// The only protocol version so far. HELLO negotiates the highest common one.
inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::uint8_t min_supported_version = 1;
inline constexpr std::uint8_t max_supported_version = 1;

inline constexpr std::size_t length_size = 4;
inline constexpr std::size_t version_offset = 4;
inline constexpr std::size_t opcode_offset = 5;
inline constexpr std::size_t request_id_offset = 6;
inline constexpr std::size_t header_size = 10;  // length + version + opcode + request id
inline constexpr std::size_t crc_size = 4;
// Smallest legal value of the length field: version + opcode + request id + crc.
inline constexpr std::uint32_t frame_min_length = header_size - length_size + crc_size;
// Bytes a frame adds around its payload.
inline constexpr std::size_t frame_overhead = header_size + crc_size;

// Default largest frame (length field + 4) a peer accepts: the 1 MiB body limit
// plus room for a batch of smaller messages and their headers.
inline constexpr std::size_t default_max_frame_bytes = 4 * 1024 * 1024 + 64 * 1024;
// Frames are never larger than this, whatever the configuration (a 32-bit
// length would otherwise let one frame ask for 4 GiB of buffer).
inline constexpr std::size_t absolute_max_frame_bytes = 64 * 1024 * 1024;

enum class opcode : std::uint8_t {
  // session
  hello = 0x01,     // C->S: min/max version, client name
  hello_ok = 0x02,  // S->C: chosen version, server limits, server name
  ping = 0x03,      // either direction; answered by pong with the same request id
  pong = 0x04,
  error = 0x05,  // S->C: errc number + message; request id 0 or that of the failed request
  ok = 0x06,     // S->C: success of a request without a richer answer; u64 value
  // publishing
  publish = 0x10,  // C->S: batch of messages
  confirm = 0x11,  // S->C: one status per message of the batch, sent once durable
  // consuming
  subscribe = 0x20,            // C->S: queue, credit, lease -> ok(value = subscription id)
  unsubscribe = 0x21,          // C->S: subscription id -> ok
  deliver = 0x22,              // S->C (request id 0): subscription id + batch of deliveries
  credit = 0x23,               // C->S: subscription id + credit to add; no answer unless it fails
  ack = 0x24,                  // C->S: batch of delivery tags -> settle_result
  nack = 0x25,                 // C->S: batch of (tag, delay, flags) -> settle_result
  settle_result = 0x26,        // S->C: the tags that failed, with their errors
  subscription_closed = 0x27,  // S->C (request id 0): the broker ended a subscription
  // scheduling and topology
  cancel_scheduled = 0x30,  // C->S: message id -> ok
  declare = 0x31,           // C->S: queue / topic / binding -> ok
  // admin
  list_queues = 0x40,          // C->S -> queue_list
  queue_list = 0x41,           // S->C
  peek = 0x42,                 // C->S: queue, max -> peek_result
  peek_result = 0x43,          // S->C
  replay_dead_letters = 0x44,  // C->S: dead-letter queue, max (0 = all) -> ok(value = count)
  stats = 0x45,                // C->S -> stats_result
  stats_result = 0x46,         // S->C: (name, value) pairs
  peek_id = 0x47,              // C->S: queue, message id -> peek_result (0 or 1 message)
};

// True for every opcode listed above.
bool is_known_opcode(std::uint8_t value) noexcept;
std::string_view opcode_name(opcode op) noexcept;

// DECLARE kinds.
enum class declare_kind : std::uint8_t { queue = 1, topic = 2, binding = 3 };

// NACK entry flags (the entry's u8): dead-letter now, or release (give back
// without counting an attempt). Other bits are a protocol error.
inline constexpr std::uint8_t nack_flag_dead_letter = 0x01;
inline constexpr std::uint8_t nack_flag_release = 0x02;
inline constexpr std::uint8_t nack_flags_known = nack_flag_dead_letter | nack_flag_release;

// Limits on counts inside one frame (each also bounded by the frame size).
inline constexpr std::uint32_t max_batch_messages = 65536;
inline constexpr std::uint32_t max_headers_per_message = 1024;

}  // namespace outrider::broker_client::wire
