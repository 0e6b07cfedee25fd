// Rules shared by the OTLP protobuf and JSON decoders: which spans are valid,
// the service name from the resource, the remote endpoint from attributes.
#pragma once

#include <memory>
#include <string>

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

}  // namespace outrider::tracing::detail
