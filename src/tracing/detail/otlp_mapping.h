// Rules shared by the OTLP protobuf and JSON decoders: which spans are valid,
// the service name from the resource, the remote endpoint from attributes.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tracing/codec.h"
#include "tracing/span.h"

namespace outrider::tracing::detail {

// Service name used when the resource has no service.name (OTel's default).
inline constexpr std::string_view unknown_service = "unknown_service";

// Fills local_endpoint.service_name from the resource and remote_endpoint from
// peer.service / server.address / net.peer.name (+ port) for CLIENT and
// PRODUCER spans, as OpenTelemetry's Zipkin exporter does.
void finish_otlp_span(span& s);

// Adds `s` to `batch` if its ids are valid, else counts it as rejected.
// `has_valid_ids` is false when the trace or span id had a wrong length.
void accept_otlp_span(decoded_batch& batch, span&& s, bool has_valid_ids);

// Groups `spans` by resource (spans sharing one resource object, or, for spans
// without one, by service name) in first-seen order and calls `fn` per group,
// for the OTLP encoders' ResourceSpans.
void for_each_resource_group(
    const std::vector<span>& spans,
    const std::function<void(const span_resource&, const std::vector<const span*>&)>& fn);

}  // namespace outrider::tracing::detail
