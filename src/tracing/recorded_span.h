// recorded_span: what the tracer records for a sampled span, kept compact so
// that recording costs one allocation and no string building: fixed fields,
// ids as integers, attributes with one-byte keys (`attr`) for the keys the
// sidecar uses, and the span's text (name, string values, other keys) copied
// into one inline buffer. Nothing is formatted until export: the exporter
// encodes records straight to OTLP protobuf, OTLP/JSON or Zipkin JSON on its
// own thread (the encoders below) and converts them to the full `span` model
// only for sinks that want spans.
//
// Thread-safety: a plain value; one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/assert.h"
#include "tracing/span.h"

namespace outrider::tracing {

// Attribute keys with a fixed spelling (OpenTelemetry semantic conventions and
// Outrider's own), one byte each while recorded. X(identifier, "key").
#define OUTRIDER_SPAN_ATTRIBUTES(X)                                           \
  X(client_address, "client.address")                                         \
  X(error_type, "error.type")                                                 \
  X(http_request_method, "http.request.method")                               \
  X(http_request_resend_count, "http.request.resend_count")                   \
  X(http_response_status_code, "http.response.status_code")                   \
  X(http_route, "http.route")                                                 \
  X(messaging_batch_message_count, "messaging.batch.message_count")           \
  X(messaging_consumer_group_name, "messaging.consumer.group.name")           \
  X(messaging_destination_name, "messaging.destination.name")                 \
  X(messaging_message_body_size, "messaging.message.body.size")               \
  X(messaging_message_id, "messaging.message.id")                             \
  X(messaging_operation_name, "messaging.operation.name")                     \
  X(messaging_operation_type, "messaging.operation.type")                     \
  X(messaging_system, "messaging.system")                                     \
  X(outrider_delivery_outcome, "outrider.delivery.outcome")                   \
  X(outrider_job_name, "outrider.job.name")                                   \
  X(outrider_job_scheduled_time_ms, "outrider.job.scheduled_time_ms")         \
  X(outrider_job_fired_time_ms, "outrider.job.fired_time_ms")                 \
  X(outrider_job_lag_ms, "outrider.job.lag_ms")                               \
  X(outrider_job_attempt, "outrider.job.attempt")                             \
  X(outrider_message_attempt, "outrider.message.attempt")                     \
  X(outrider_message_delivered_time_ms, "outrider.message.delivered_time_ms") \
  X(outrider_message_delivery_lag_ms, "outrider.message.delivery_lag_ms")     \
  X(outrider_message_published_time_ms, "outrider.message.published_time_ms") \
  X(outrider_message_scheduled_time_ms, "outrider.message.scheduled_time_ms") \
  X(outrider_probe, "outrider.probe")                                         \
  X(outrider_pubsub_name, "outrider.pubsub.name")                             \
  X(outrider_target, "outrider.target")                                       \
  X(server_address, "server.address")                                         \
  X(server_port, "server.port")                                               \
  X(url_full, "url.full")                                                     \
  X(url_path, "url.path")                                                     \
  X(url_scheme, "url.scheme")

enum class attr : std::uint8_t {
#define OUTRIDER_ATTR_ENUM(id, text) id,
  OUTRIDER_SPAN_ATTRIBUTES(OUTRIDER_ATTR_ENUM)
#undef OUTRIDER_ATTR_ENUM
      custom  // the key's text is stored with the span
};

// The key's spelling ("" for attr::custom).
std::string_view attr_name(attr key) noexcept;

// A fixed key's string attribute (tracer::start_span's list).
struct string_attribute {
  attr key;
  std::string_view value;
};

class recorded_span {
 public:
  // A piece of the span's text (offsets, so a moved record stays valid).
  // (Trivial, so that it can share a union with a number: value-initialise it.)
  struct text_ref {
    std::uint32_t offset;
    std::uint32_t size;
  };
  // 16 bytes: a string value's text or a number, never both.
  struct attribute {
    attr key = attr::custom;
    attribute_value::type kind = attribute_value::type::empty;  // string, boolean, int64, float64
    std::uint16_t key_size = 0;    // attr::custom: the key's text (at most max_key_size)...
    std::uint32_t key_offset = 0;  // ...at this offset of the span's text
    union {
      text_ref text;            // string values
      std::int64_t number = 0;  // int64; boolean as 0/1; float64 as its bits (std::bit_cast)
    };
  };
  static_assert(sizeof(attribute) == 16);
  // Custom keys longer than this are cut to it.
  static constexpr std::size_t max_key_size = 0xffff;
  static constexpr std::size_t inline_attributes = 12;
  static constexpr std::size_t inline_text_bytes = 384;

  // The inline arrays are left uninitialised (they are written before read).
  recorded_span() noexcept {}  // NOLINT(modernize-use-equals-default): no zeroing
  // Back to a new record's state, keeping the allocations (for reuse) and
  // the resource (a tracer taking the record sets its own).
  void clear() noexcept;

  // The fields are laid out so that a typical sidecar span (8 attributes,
  // ~120 bytes of text) writes 7 or 8 cache lines of its ~800 bytes: what
  // every span writes first, then the (usually empty) vectors, the
  // attributes, the text; nothing past the text is read or written.
  id128 trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_id = 0;  // 0: root
  std::int64_t start_ns = 0;    // Unix epoch
  std::int64_t end_ns = 0;
  text_ref name{};
  text_ref trace_state{};
  text_ref status_message{};
  span_kind kind = span_kind::internal;
  status_code status = status_code::unset;
  std::uint8_t flags = 0;  // W3C trace flags

 private:
  std::uint8_t inline_count_ = 0;
  std::uint32_t text_used_ = 0;

 public:
  // The tracer's resource (service.name first); shared, read-only.
  std::shared_ptr<const span_resource> resource;
  // Rare on the sidecar's spans: kept in the full model.
  std::vector<span_event> events;
  std::vector<span_link> links;

 private:
  // Attributes and text past the inline arrays (rare). Here, beside the other
  // vectors, so that packs() and clear() find all four empty on the lines the
  // record's fixed fields are on, not on a line past the inline arrays.
  std::vector<attribute> more_attributes_;
  std::string more_text_;

 public:
  // Copies `s` into the span's text.
  text_ref store(std::string_view s);
  // `a`, a space and `b` as one piece of the span's text (names such as "POST /orders").
  text_ref store_joined(std::string_view a, std::string_view b);
  std::string_view text(text_ref r) const noexcept {
    if (r.size == 0) return {};
    if (r.offset < inline_text_bytes) return {text_.data() + r.offset, r.size};
    return std::string_view(more_text_).substr(r.offset - inline_text_bytes, r.size);
  }

  void add(const attribute& a) {
    if (inline_count_ < inline_attributes) {
      attributes_[inline_count_++] = a;
    } else {
      add_more(a);
    }
  }
  // A fixed key's string attribute: store() and add() in one call.
  void add_string(attr key, std::string_view value);
  // Several, in order, in one call (one loop, no call per attribute when they fit inline).
  void add_strings(std::span<const string_attribute> attributes);
  std::size_t attribute_count() const noexcept { return inline_count_ + more_attributes_.size(); }
  // Bytes of the span's text (name, trace state, status message, string values, custom keys).
  std::size_t text_bytes() const noexcept { return text_used_ + more_text_.size(); }
  const attribute& attribute_at(std::size_t i) const noexcept {
    return i < inline_count_ ? attributes_[i] : more_attributes_[i - inline_count_];
  }
  std::string_view key_of(const attribute& a) const noexcept {
    return a.key == attr::custom ? text(text_ref{a.key_offset, a.key_size}) : attr_name(a.key);
  }

  // A record handed to another thread as bytes (the exporter's per-thread
  // chunks): its fields, attributes and text, only what is used, in one run
  // read in order. Only records whose attributes and text fit the inline
  // arrays and that have no events or links pack (packs()); the resource is
  // not packed (the chunk has it).
  bool packs() const noexcept {
    return more_attributes_.empty() && more_text_.empty() && events.empty() && links.empty();
  }
  std::size_t packed_size() const noexcept;
  // Writes packed_size() bytes at `to` (no alignment needed); returns their end.
  // Inline: the exporter packs every span on the thread that ends it.
  char* pack(char* to) const noexcept;
  // This record (cleared of events, links and text beyond the inline array;
  // `resource` kept) from bytes pack() wrote; returns their end.
  const char* unpack(const char* from) noexcept;

  // The service name (the resource's service.name), "" without a resource.
  std::string_view service_name() const noexcept;
  // The full span model (for the JSON encodings and span sinks).
  span to_span() const;

 private:
  void add_more(const attribute& a);
  // store_joined's text past the inline array (out of line: a rare path).
  [[gnu::noinline]] void append_more_text(std::string_view a, std::string_view b);
  // clear()'s part for records that outgrew the inline arrays or have events or links.
  [[gnu::noinline]] void clear_overflow() noexcept;

  std::array<attribute, inline_attributes> attributes_;
  std::array<char, inline_text_bytes> text_;
};

// Bytes after a packed record that write_packed_otlp_protobuf_span_field may
// read: the exporter's chunk buffers are allocated with this many more.
inline constexpr std::size_t packed_slack = 32;

namespace detail {
// The fixed fields of a packed record (then its attributes, then its text).
struct packed_head {
  id128 trace_id;
  std::uint64_t span_id;
  std::uint64_t parent_id;
  std::int64_t start_ns;
  std::int64_t end_ns;
  recorded_span::text_ref name;
  recorded_span::text_ref trace_state;
  recorded_span::text_ref status_message;
  std::uint32_t text_used;
  span_kind kind;
  status_code status;
  std::uint8_t flags;
  std::uint8_t attributes;
};
static_assert(std::is_trivially_copyable_v<packed_head> && sizeof(packed_head) == 80);
}  // namespace detail

inline std::size_t recorded_span::packed_size() const noexcept {
  return sizeof(detail::packed_head) + inline_count_ * sizeof(attribute) + text_used_;
}

inline char* recorded_span::pack(char* to) const noexcept {
  OUTRIDER_ASSERT(packs(), "packing a record with more than its inline arrays");
  const detail::packed_head h{trace_id, span_id,     parent_id,      start_ns,   end_ns,
                              name,     trace_state, status_message, text_used_, kind,
                              status,   flags,       inline_count_};
  std::memcpy(to, &h, sizeof h);
  to += sizeof h;
  const std::size_t attributes = inline_count_ * sizeof(attribute);
  std::memcpy(to, attributes_.data(), attributes);
  to += attributes;
  std::memcpy(to, text_.data(), text_used_);
  return to + text_used_;
}

using recorded_span_ptr = std::unique_ptr<recorded_span>;

// Records are recycled: the exporter hands encoded ones back and tracers take
// them again, so that in steady state recording a span allocates nothing and
// no record is freed on another thread than the one that allocated it
// (cross-thread frees are slow in glibc's malloc). A process-wide pool of at
// most max_pooled_recorded_spans records (~800 bytes each), moved in and out
// in whole batches under one mutex, plus a per-thread cache of one batch. A
// record is cleared when taken, not when given back: the exporter's thread
// only reads records, so their cache lines are not written by two cores.
inline constexpr std::size_t max_pooled_recorded_spans = 2048;
// A cleared record: from this thread's cache, else a batch from the pool, else new.
recorded_span_ptr acquire_recorded_span();
// Gives `spans` (which it leaves empty) back to the pool, or frees what does not
// fit; they are not touched (acquire clears them).
void release_recorded_spans(std::vector<recorded_span_ptr>& spans) noexcept;
// Gives one record back to this thread's cache (the next acquire_recorded_span
// on this thread takes it, still in this core's cache), or frees it when the
// cache is full. For sinks that encode a record on the thread that ended it.
void recycle_recorded_span(recorded_span_ptr s) noexcept;

// OTLP ExportTraceServiceRequest (protobuf) for `spans`, written field by
// field (no protobuf message objects): one ResourceSpans per resource object,
// in first-seen order. Decodes to the same spans as
// encode_otlp_protobuf(to_span() of each).
std::string encode_otlp_protobuf(std::span<const recorded_span_ptr> spans);
// Appends the same encoding to `out`.
void append_otlp_protobuf(std::string& out, std::span<const recorded_span_ptr> spans);
// Writes the same encoding into `out` from offset `at` (at most out.size()),
// overwriting what is there and growing `out` only when it is too short (the
// exporter reuses its buffer: a resize zero-fills what it adds); returns the
// offset where the encoding ends. Bytes of `out` past it are left as they were.
std::size_t write_otlp_protobuf(std::string& out, std::size_t at,
                                std::span<const recorded_span_ptr> spans);
// The same encoding in one pass over the records where it can (one resource,
// no events or links: a sidecar's batches), into `buffer` (reused: grown when
// too short, not zero-filled again), returned as a view of `buffer` (not
// necessarily at its start) valid until `buffer` changes.
std::string_view encode_otlp_protobuf_into(std::string& buffer,
                                           std::span<const recorded_span_ptr> spans);

// One span at a time, on the thread that recorded it (the exporter's
// per-thread batches): the span's piece of a request body, appended to bytes
// that are concatenated later under a head (OTLP) or in a list.
//
// OTLP protobuf: the ScopeSpans.spans field (tag, length, Span) written into
// `buffer` from offset `at`, over whatever bytes are there (`buffer` grows,
// doubling, when it is too short; what it adds is zero-filled once); returns
// the offset where the field ends.
std::size_t write_otlp_protobuf_span_field(std::string& buffer, std::size_t at,
                                           const recorded_span& s);
// The same field for the record pack() wrote at `packed` (read in place, not
// unpacked); `packed` is moved past the packed record.
// REQUIRES: packed_slack readable bytes after the packed record (its text is
// copied in blocks; what is read past it is not written out).
std::size_t write_packed_otlp_protobuf_span_field(std::string& buffer, std::size_t at,
                                                  const char*& packed);
// What goes in front of `spans_size` bytes of such fields to make one
// ResourceSpans of an ExportTraceServiceRequest for `resource` (null: an empty
// one): concatenated with the fields it is a complete request, and requests
// concatenate (resource_spans repeat).
void append_otlp_protobuf_head(std::string& out, const span_resource* resource,
                               std::size_t spans_size);
// OTLP/JSON: the span's object in ScopeSpans.spans; the group around such
// objects (comma-separated) is append_otlp_json_group_open + objects + "]}]}",
// and a request is {"resourceSpans":[ groups, comma-separated ]}.
void append_otlp_json_span(std::string& out, const recorded_span& s);
void append_otlp_json_group_open(std::string& out, const span_resource* resource);
inline constexpr std::string_view otlp_json_group_close = "]}]}";
// Zipkin v2 JSON: the span's object of the list (comma-separated in [ ]).
void append_zipkin_json_span(std::string& out, const recorded_span& s);

// OTLP/JSON ExportTraceServiceRequest and the Zipkin v2 JSON list of `spans`,
// written straight from the records (recorded_json.cpp): byte for byte what
// encode_otlp_json / zipkin_json_list (codec.h) give for to_span() of each.
void append_otlp_json(std::string& out, std::span<const recorded_span_ptr> spans);
void append_zipkin_json_list(std::string& out, std::span<const recorded_span_ptr> spans);

}  // namespace outrider::tracing
