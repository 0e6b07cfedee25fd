// Wire formats of the collector: request bodies to spans (OTLP protobuf and
// JSON, Zipkin v2 JSON and proto3), spans to JSON (the Zipkin v2 view for the
// query API, the full model for Outrider's UI), and gzip.
//
// Decoders never crash or assert on input: malformed bodies are
// malformed_request errors with a message saying where; bodies nested or sized
// beyond the limits below are errors too. Generated protobuf code and
// Boost.JSON stay inside the .cpp files (compilation firewall).
//
// Thread-safety: all functions are pure and may run on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tracing/span.h"

namespace outrider::tracing {

// Deepest nesting of attribute arrays/kvlists accepted (deeper values are rejected).
inline constexpr int max_attribute_depth = 16;

// A decoded request. OTLP spans with invalid ids (wrong length or all zero) are
// left out and counted in `rejected`, as OTLP's partial success reports them.
struct decoded_batch {
  std::vector<span> spans;
  std::uint64_t rejected = 0;
  std::string rejection_message;  // the first reason a span was rejected
};

// OTLP ExportTraceServiceRequest, binary protobuf (Content-Type application/x-protobuf).
result<decoded_batch> decode_otlp_protobuf(std::string_view body);
// OTLP ExportTraceServiceRequest, OTLP/JSON (hex ids, integer enums, int64 as
// string or number, lowerCamelCase or original field names, unknown fields ignored).
result<decoded_batch> decode_otlp_json(std::string_view body);
// Zipkin v2 ListOfSpans as JSON. Any invalid span fails the whole request (as Zipkin does).
result<decoded_batch> decode_zipkin_json(std::string_view body);
// Zipkin v2 ListOfSpans as proto3 (zipkin.proto).
result<decoded_batch> decode_zipkin_proto(std::string_view body);

// OTLP ExportTraceServiceResponse: empty when nothing was rejected, else with
// partial_success {rejected_spans, error_message}.
std::string encode_otlp_response_protobuf(std::uint64_t rejected, std::string_view message);
std::string encode_otlp_response_json(std::uint64_t rejected, std::string_view message);

// OTLP ExportTraceServiceRequest for `spans` (exporters): one ResourceSpans
// per distinct resource object (spans without one grouped by service name,
// with service.name as the only resource attribute), in first-seen order.
std::string encode_otlp_protobuf(const std::vector<span>& spans);
// The same in OTLP/JSON (hex ids, integer enums, 64-bit integers as strings).
std::string encode_otlp_json(const std::vector<span>& spans);

// Appends `s` as a Zipkin v2 JSON span (service and span names lower-cased as
// Zipkin does; OTLP-only data mapped per OpenTelemetry's Zipkin exporter rules:
// status as otel.status_code/error tags, scope as otel.scope.*, event names as
// annotations, resource attributes as tags).
void append_zipkin_json(std::string& out, const span& s);
// A JSON array of spans in the Zipkin v2 encoding.
std::string zipkin_json_list(const std::vector<span>& spans);
// Appends `s` with everything the model keeps (links, events with attributes,
// status, resource and scope, typed attributes); see src/tracing/README.md.
void append_native_json(std::string& out, const span& s);

// Inflates a gzip (or zlib) body. Errors: malformed_request for a corrupt
// stream, body_too_large when the output would exceed `max_output_bytes`.
result<std::string> gunzip(std::string_view body, std::size_t max_output_bytes);
// Compresses with gzip at zlib `level` (-1: zlib's default, 1: fastest).
std::string gzip(std::string_view data, int level = -1);

}  // namespace outrider::tracing
