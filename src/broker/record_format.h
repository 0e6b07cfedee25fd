// Engine records: what the broker engine appends to its journal, and how.
//
// The journal (journal.h) is the source of truth for broker state; these
// records are its payloads. Every payload starts with a format version byte;
// the record type travels beside the payload (the journal's type byte). The
// checksum is the enclosing log record's (storage::log checksums every
// record), so payloads carry none of their own. docs/formats/broker-records.md
// is the prose specification; the constants here are normative.
//
// Encoding: little-endian fixed-width integers; strings and byte blobs are a
// u32 length followed by the bytes. Decoding is defensive: truncated input,
// lengths past the end, unknown versions, trailing bytes or out-of-range
// values give errc::data_corruption, never a crash or an assert.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/id.h"
#include "base/result.h"

namespace outrider::broker {

namespace record_format {
// Version of every payload written by this build. A reader accepts exactly the
// versions it knows; adding a field means a new version.
inline constexpr std::uint8_t current_version = 1;
// Upper bounds that keep a corrupt length from allocating gigabytes.
inline constexpr std::uint32_t max_name_bytes = 255;
inline constexpr std::uint32_t max_destinations = 4096;
inline constexpr std::uint32_t max_headers = 4096;
inline constexpr std::uint32_t max_blob_bytes = 256U * 1024U * 1024U;
}  // namespace record_format

// Journal record types of the broker engine (the journal's type byte).
// Values are stable; never reuse one.
enum class record_type : std::uint8_t {
  queue_declare = 1,
  topic_declare = 2,
  bind = 3,
  publish = 10,
  ack = 11,
  nack = 12,
  dead_letter = 13,
  dlq_replay = 14,
  cancel = 15,
  // 20: reserved, never written (the checkpoint is a file: checkpoint_file.h).
};

// Why a delivery ended without an ack (recorded in nack records).
enum class nack_reason : std::uint8_t {
  nack = 1,           // the consumer said so
  lease_expired = 2,  // visibility timeout passed
  consumer_gone = 3,  // the consumer unsubscribed with the message in flight
  rejected = 4,       // the consumer asked for the dead-letter queue at once
  released = 5,       // the consumer gave it back unprocessed (shutdown): not a failed attempt
};

struct queue_declare_record {
  std::string name;
  std::uint32_t max_attempts = 0;  // 0 = unlimited
  std::int64_t lease_ns = 0;
  std::string dead_letter_queue;  // empty: this queue has none (it is one)
  bool is_dead_letter_queue = false;
  friend bool operator==(const queue_declare_record&, const queue_declare_record&) = default;
};

struct topic_declare_record {
  std::string name;
  friend bool operator==(const topic_declare_record&, const topic_declare_record&) = default;
};

struct bind_record {
  std::string topic;
  std::string queue;
  friend bool operator==(const bind_record&, const bind_record&) = default;
};

// A message as published. Destinations are resolved at publish time (a topic
// publish lists every subscription queue bound then), so replay needs no
// binding history to place the message.
struct publish_record {
  id128 id;
  std::int64_t published_at_ns = 0;
  std::int64_t deliver_at_ns = 0;  // > published_at_ns: scheduled; otherwise ready at once
  std::string source;              // the queue or topic the publisher named
  std::vector<std::string> destinations;
  std::map<std::string, std::string> headers;
  std::string body;
  friend bool operator==(const publish_record&, const publish_record&) = default;
};

struct ack_record {
  std::string queue;
  id128 id;
  friend bool operator==(const ack_record&, const ack_record&) = default;
};

// A delivery that ended without an ack; the message is ready again at once
// (redeliver_at_ns == 0) or at redeliver_at_ns (retry backoff).
struct nack_record {
  std::string queue;
  id128 id;
  std::uint32_t failed_attempts = 0;  // after this failure
  std::int64_t redeliver_at_ns = 0;
  nack_reason reason = nack_reason::nack;
  friend bool operator==(const nack_record&, const nack_record&) = default;
};

// The message left `queue` for its dead-letter queue after failed_attempts.
struct dead_letter_record {
  std::string queue;
  id128 id;
  std::string dead_letter_queue;
  std::uint32_t failed_attempts = 0;
  nack_reason reason = nack_reason::nack;
  friend bool operator==(const dead_letter_record&, const dead_letter_record&) = default;
};

// The message moved from a dead-letter queue back to `target`, attempts reset.
struct dlq_replay_record {
  std::string dead_letter_queue;
  id128 id;
  std::string target;
  friend bool operator==(const dlq_replay_record&, const dlq_replay_record&) = default;
};

// Tombstone: the scheduled message `id` published at `publish_position` must
// never be delivered.
struct cancel_record {
  id128 id;
  std::uint64_t publish_position = 0;
  friend bool operator==(const cancel_record&, const cancel_record&) = default;
};

std::string encode(const queue_declare_record& r);
std::string encode(const topic_declare_record& r);
std::string encode(const bind_record& r);
std::string encode(const publish_record& r);
std::string encode(const ack_record& r);
std::string encode(const nack_record& r);
std::string encode(const dead_letter_record& r);
std::string encode(const dlq_replay_record& r);
std::string encode(const cancel_record& r);

// Errors (all): data_corruption with a message naming the record and field.
result<queue_declare_record> decode_queue_declare(std::string_view bytes);
result<topic_declare_record> decode_topic_declare(std::string_view bytes);
result<bind_record> decode_bind(std::string_view bytes);
result<publish_record> decode_publish(std::string_view bytes);
// decode_publish without headers and body (left empty; still validated): what
// replay needs to rebuild queue state, without copying every body.
result<publish_record> decode_publish_envelope(std::string_view bytes);
result<ack_record> decode_ack(std::string_view bytes);
result<nack_record> decode_nack(std::string_view bytes);
result<dead_letter_record> decode_dead_letter(std::string_view bytes);
result<dlq_replay_record> decode_dlq_replay(std::string_view bytes);
result<cancel_record> decode_cancel(std::string_view bytes);

// True when `payload` is a publish record (of a version this build reads) whose
// deliver_at lies after its published_at: a scheduled message. Reads only the
// fixed-size prefix; false for anything shorter or of another version.
bool is_scheduled_publish(std::string_view payload) noexcept;

// Encoded size of a publish record without building it (for limits).
std::size_t encoded_size(const publish_record& r);

}  // namespace outrider::broker
