// otlp_receiver: an OTLP/HTTP trace receiver as a plain request → response
// function, for the sidecar's app port (`--app-otlp-port`): the app's own
// spans (any OpenTelemetry SDK pointed at http://127.0.0.1:<port>) are decoded
// with the collector's decoders and handed to a span_sink (the exporter), so
// they travel with the sidecar's spans.
//
// POST /v1/traces, Content-Type application/x-protobuf or application/json,
// optionally gzip. Answers as an OTLP collector does: 200 with an
// ExportTraceServiceResponse (partial success for rejected spans) in the
// request's encoding; 400 / 413 / 415 with a google.rpc.Status.
//
// Thread-safety: pure apart from the sink (which must be thread-safe).
#pragma once

#include <cstddef>

#include "http/message.h"
#include "tracing/tracer.h"

namespace outrider::tracing {

inline constexpr std::size_t default_max_otlp_body = 16 * 1024 * 1024;

http::response receive_otlp_traces(http::request&& req, span_sink& sink,
                                   std::size_t max_decompressed_bytes = default_max_otlp_body);

}  // namespace outrider::tracing
