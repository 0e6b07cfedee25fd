// trace_context: propagation of trace context in headers.
//
//  - W3C Trace Context Level 1 (the W3C Recommendation): `traceparent` and
//    `tracestate` parsed and formatted exactly per its rules (see
//    docs/tracing.md, "Propagation", for the rule-by-rule list and the tests
//    in trace_context_test.cpp that check each MUST / MUST NOT).
//  - B3 (Zipkin): the single `b3` header and the multi `X-B3-*` headers,
//    accepted on input; emitted only when asked (`format_b3_single`).
//
// Pure functions, no allocation beyond the returned values; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/id.h"
#include "http/message.h"

namespace outrider::tracing {

inline constexpr std::uint8_t trace_flag_sampled = 0x01;
// The only traceparent version this implementation knows (and emits).
inline constexpr std::uint8_t traceparent_version = 0x00;
inline constexpr std::size_t traceparent_size = 55;  // "00-" 32 "-" 16 "-" 2
inline constexpr std::size_t tracestate_max_members = 32;
// What we propagate at most of a combined tracestate (the spec asks for at least 512).
inline constexpr std::size_t tracestate_max_size = 512;
// Entries longer than this are the first removed when truncating (the spec's rule).
inline constexpr std::size_t tracestate_long_entry = 128;

// The identity of a span as it travels between processes.
struct span_context {
  id128 trace_id;
  std::uint64_t span_id = 0;
  std::uint8_t flags = 0;   // only trace_flag_sampled is ever set
  std::string trace_state;  // normalized tracestate (format_tracestate), may be empty
  bool remote = false;      // extracted from a carrier (not created here)

  bool valid() const noexcept { return !trace_id.is_zero() && span_id != 0; }
  bool sampled() const noexcept { return (flags & trace_flag_sampled) != 0; }
};

struct traceparent_fields {
  id128 trace_id;
  std::uint64_t parent_id = 0;
  std::uint8_t flags = 0;  // the sampled bit only; other bits are dropped (reserved: zero)
  std::uint8_t version = 0;
};

// Parses a traceparent value. nullopt when the header must be ignored:
// version not 2 lower-case hex digits followed by '-', version ff, trace-id or
// parent-id not lower-case hex of the right length or all zero, flags not 2
// lower-case hex digits, version 00 with any other length than 55. A higher
// version is parsed leniently: at least 55 characters, the three fields at
// their version-00 positions, and after the flags either the end or '-'
// (trailing fields are ignored).
std::optional<traceparent_fields> parse_traceparent(std::string_view value) noexcept;

// "00-<trace-id>-<span-id>-<flags>" (always version 00, reserved flag bits zero).
// write_traceparent writes its traceparent_size characters to `out` (no allocation).
void write_traceparent(const id128& trace_id, std::uint64_t span_id, std::uint8_t flags,
                       char* out) noexcept;
std::string format_traceparent(const id128& trace_id, std::uint64_t span_id, std::uint8_t flags);
inline std::string format_traceparent(const span_context& c) {
  return format_traceparent(c.trace_id, c.span_id, c.flags);
}

struct tracestate_member {
  std::string key;
  std::string value;
  bool operator==(const tracestate_member&) const = default;
};

// True when `key` matches the Level 1 grammar: simple-key = lcalpha
// 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/"), or multi-tenant-key =
// tenant-id "@" system-id (tenant-id: (lcalpha / DIGIT) then up to 240
// keychars; system-id: lcalpha then up to 13 keychars).
bool valid_tracestate_key(std::string_view key) noexcept;
// True when `value` is 1..256 characters of 0x20-0x7E except ',' and '=',
// not ending in a space.
bool valid_tracestate_value(std::string_view value) noexcept;

// Parses a combined tracestate (several header fields joined with ','). Empty
// and whitespace-only members are skipped; OWS around members is ignored;
// members that break the key/value grammar are dropped (the rest kept, in
// order); a repeated key keeps its first (left-most, most recent) entry; at
// most 32 members are kept (the right-most are removed).
std::vector<tracestate_member> parse_tracestate(std::string_view combined);

// Joins members with ','; when the result would exceed `max_size`, whole
// entries are removed: those longer than 128 characters first, then from the
// right.
std::string format_tracestate(const std::vector<tracestate_member>& members,
                              std::size_t max_size = tracestate_max_size);

// parse + format: what we propagate for a received tracestate.
inline std::string normalize_tracestate(std::string_view combined) {
  return format_tracestate(parse_tracestate(combined));
}

// B3 single header: "{trace-id}-{span-id}[-{sampling}[-{parent-span-id}]]"
// or a lone sampling state ("0", "1", "d"); trace-id 16 or 32 lower-case hex,
// span-id 16. A lone sampling state yields nullopt (no context to continue).
std::optional<span_context> parse_b3_single(std::string_view value) noexcept;
// B3 multi headers (X-B3-TraceId, X-B3-SpanId, X-B3-Sampled, X-B3-Flags).
// Empty views mean "absent". Debug (X-B3-Flags: 1) implies sampled.
std::optional<span_context> parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                                           std::string_view sampled,
                                           std::string_view flags) noexcept;
// "{32 hex trace-id}-{16 hex span-id}-{1|0}".
std::string format_b3_single(const span_context& c);

// The headers a context can be extracted from; empty views are absent. The
// caller joins repeated tracestate fields with ','.
struct carrier_headers {
  std::string_view traceparent;
  std::string_view tracestate;
  std::string_view b3;
  std::string_view x_b3_trace_id;
  std::string_view x_b3_span_id;
  std::string_view x_b3_sampled;
  std::string_view x_b3_flags;
  // carrier_from_fields: the message has a field named b3 or x-b3-* (any of
  // them, X-B3-ParentSpanId included), so propagating replaces them.
  bool any_b3 = false;
  // carrier_from_fields: the message has a tracestate field (even an empty one).
  bool any_tracestate = false;
  // carrier_from_fields: the number of traceparent fields (2 for two or more),
  // so that a single one can be rewritten in place (`traceparent` views its value).
  std::uint8_t traceparents = 0;
};

// traceparent first (tracestate is read only when traceparent is valid), else
// b3, else the X-B3-* headers. The result is marked remote.
std::optional<span_context> extract_context(const carrier_headers& headers);
// The same into `out` (no optional to build and move; `out` is left as it was
// when there is no context): true when there is one.
bool extract_context(const carrier_headers& headers, span_context& out);

// The carrier headers of an HTTP message (names in any case). Repeated
// tracestate fields are joined with ',' into `tracestate_storage`, which the
// result points into (as it points into `fields`).
carrier_headers carrier_from_fields(const http::fields& fields, std::string& tracestate_storage);

}  // namespace outrider::tracing
