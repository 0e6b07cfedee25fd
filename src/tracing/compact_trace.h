// The compact trace encoding the web UI loads (GET /api/outrider/v1/trace/{id}?format=compact):
// the same spans as the native JSON, ~4x smaller and cheaper to decode in a browser. Every
// string (names, services, attribute keys and values, linked trace ids) is written once in a
// string table and referenced by index; times are integer nanoseconds relative to the trace's
// earliest start (one "base" string holds the absolute Unix time); resources are a table too.
// Attribute values are their display text (attribute_value::to_text()). The layout is in
// docs/formats/compact-trace.md.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "tracing/span.h"

namespace outrider::tracing {

// A span of another trace with a link to a span of this trace (shown as "linked from").
struct incoming_link {
  id128 trace_id;             // the linking span's trace
  std::uint64_t span_id = 0;  // the linking span
  std::string name;           // its name and service, for display
  std::string service;
  std::uint64_t target_span_id = 0;  // the span of this trace it links to
};

// Encodes `spans` (one trace; may be empty) and the links into it.
std::string encode_compact_trace(const id128& trace_id, const std::vector<span>& spans,
                                 const std::vector<incoming_link>& incoming);

// Spans of `other` (another trace) that link to a span of `trace_id`, appended to `out`.
void collect_incoming_links(const id128& trace_id, const std::vector<span>& other,
                            std::vector<incoming_link>& out);

}  // namespace outrider::tracing
