// The span model of the collector: one type for spans that arrive as OTLP
// (protobuf or JSON) or Zipkin v2 (JSON or proto3). It keeps everything OTLP
// carries that Zipkin's model lacks (links, events with attributes, status,
// resource and scope), so Outrider's own UI can show it; the Zipkin query API
// renders a Zipkin view of it (codec.h).
//
// Plain values: no locks, no ownership subtleties except `resource`, which is
// shared (read-only) by every span of one OTLP ResourceSpans/ScopeSpans.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/id.h"

namespace outrider::tracing {

enum class span_kind : std::uint8_t {
  unspecified = 0,
  internal,
  server,
  client,
  producer,
  consumer
};
enum class status_code : std::uint8_t { unset = 0, ok, error };

struct key_value;

// A typed attribute value (OTLP AnyValue). Zipkin tags are strings.
struct attribute_value {
  enum class type : std::uint8_t {
    empty = 0,
    string,
    boolean,
    int64,
    float64,
    array,
    kvlist,
    bytes
  };

  type kind = type::empty;
  bool bool_value = false;
  std::int64_t int_value = 0;
  double double_value = 0;
  std::string string_value;            // string and bytes
  std::vector<attribute_value> array;  // array
  std::vector<key_value> kvlist;       // kvlist

  // Factories (defined below, once key_value is complete).
  static attribute_value of(std::string s);
  static attribute_value of_bool(bool b);
  static attribute_value of_int(std::int64_t i);
  static attribute_value of_double(double d);

  // The Zipkin tag text: strings as is, numbers and bools in their JSON
  // spelling, arrays and kvlists as JSON, bytes in base64 (OTel's Zipkin mapping).
  std::string to_text() const;
  bool operator==(const attribute_value&) const;
};

struct key_value {
  std::string key;
  attribute_value value;
  bool operator==(const key_value&) const = default;
};

using attribute_list = std::vector<key_value>;

inline attribute_value attribute_value::of(std::string s) {
  attribute_value v;
  v.kind = type::string;
  v.string_value = std::move(s);
  return v;
}
inline attribute_value attribute_value::of_bool(bool b) {
  attribute_value v;
  v.kind = type::boolean;
  v.bool_value = b;
  return v;
}
inline attribute_value attribute_value::of_int(std::int64_t i) {
  attribute_value v;
  v.kind = type::int64;
  v.int_value = i;
  return v;
}
inline attribute_value attribute_value::of_double(double d) {
  attribute_value v;
  v.kind = type::float64;
  v.double_value = d;
  return v;
}

// A network endpoint (Zipkin's Endpoint). Addresses are text ("10.0.0.1", "::1").
struct endpoint {
  std::string service_name;
  std::string ipv4;
  std::string ipv6;
  std::uint16_t port = 0;
  bool empty() const noexcept {
    return service_name.empty() && ipv4.empty() && ipv6.empty() && port == 0;
  }
  bool operator==(const endpoint&) const = default;
};

struct span_event {
  std::int64_t time_ns = 0;  // Unix epoch
  std::string name;
  attribute_list attributes;
  bool operator==(const span_event&) const = default;
};

struct span_link {
  id128 trace_id;
  std::uint64_t span_id = 0;
  std::string trace_state;
  attribute_list attributes;
  bool operator==(const span_link&) const = default;
};

struct span_status {
  status_code code = status_code::unset;
  std::string message;
  bool operator==(const span_status&) const = default;
};

// Where a span came from: the OTLP resource and instrumentation scope.
struct span_resource {
  attribute_list attributes;  // resource attributes, service.name included
  std::string scope_name;
  std::string scope_version;
  bool operator==(const span_resource&) const = default;
};

struct span {
  id128 trace_id;               // 64-bit Zipkin ids have high == 0
  std::uint64_t span_id = 0;    // never 0 in a decoded span
  std::uint64_t parent_id = 0;  // 0: root
  std::string name;
  span_kind kind = span_kind::unspecified;
  std::int64_t start_ns = 0;  // Unix epoch; 0 when unknown (Zipkin late data)
  std::int64_t end_ns = 0;    // >= start_ns; == start_ns when the duration is unknown
  std::string trace_state;
  std::uint32_t flags = 0;  // W3C trace flags in the low 8 bits
  bool debug = false;       // Zipkin
  bool shared = false;      // Zipkin: a server span sharing the client's id
  // local_endpoint.service_name is the span's service (OTLP: the resource's service.name).
  endpoint local_endpoint;
  // OTLP: derived from peer.service / server.address for CLIENT and PRODUCER spans.
  endpoint remote_endpoint;
  attribute_list attributes;
  std::vector<span_event> events;  // Zipkin annotations are events without attributes
  std::vector<span_link> links;
  span_status status;
  std::shared_ptr<const span_resource> resource;  // null for Zipkin spans
  std::uint32_t dropped_attributes = 0;
  std::uint32_t dropped_events = 0;
  std::uint32_t dropped_links = 0;

  const std::string& service_name() const noexcept { return local_endpoint.service_name; }
  std::int64_t duration_ns() const noexcept { return end_ns > start_ns ? end_ns - start_ns : 0; }
  // Value of attribute `key` (first), if present.
  const attribute_value* attribute(std::string_view key) const noexcept;
  // Equality of content (resources compared by value).
  bool same_as(const span& other) const;
};

std::string_view to_string(span_kind k) noexcept;    // "SERVER", ... ("" for unspecified/internal)
std::string_view to_string(status_code c) noexcept;  // "UNSET", "OK", "ERROR"

// Lower-case hex of a 64-bit id (16 digits).
std::string to_hex16(std::uint64_t id);
// Trace id as Zipkin spells it: 16 hex digits when the high half is zero, else 32.
std::string trace_id_hex(const id128& id);
// Parses 1..16 hex digits (case-insensitive) into a span id; nullopt on bad text.
std::optional<std::uint64_t> parse_hex64(std::string_view text) noexcept;
// Parses a trace id of 1..32 hex digits (Zipkin accepts 16 or 32; shorter is left-padded).
std::optional<id128> parse_trace_id(std::string_view text) noexcept;
// Big-endian bytes to ids; nullopt if the size is wrong (8 for span ids; 16, or 8 for Zipkin trace
// ids).
std::optional<std::uint64_t> span_id_from_bytes(std::string_view bytes) noexcept;
std::optional<id128> trace_id_from_bytes(std::string_view bytes) noexcept;

}  // namespace outrider::tracing
