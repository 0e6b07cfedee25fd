// Encoding of one span record (span_store_format.h): the spans of one trace
// that arrived in one batch, with their resources stored once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "tracing/span.h"

namespace outrider::tracing::detail {

struct span_record {
  std::int64_t ingest_ms = 0;  // wall clock when stored (retention by age)
  id128 trace_id;
  std::vector<span> spans;
};

// Appends the record of `spans` (all of trace `trace_id`) to `out`.
void encode_span_record(std::string& out, std::int64_t ingest_ms, const id128& trace_id,
                        std::span<const span* const> spans);

// Decodes a record. Errors: data_corruption for anything malformed (a wrong
// version, a length past the end, an unknown tag, nesting beyond the limit).
result<span_record> decode_span_record(std::span<const std::byte> payload);

}  // namespace outrider::tracing::detail
