// request_tracing: the sidecar's tracing calls on its request path -- the
// SERVER span of an API call, the PRODUCER span of a publish, what a publish
// records about its message, and trace context in headers -- as free
// functions, so that bench/tracing_path.cpp measures the very code the
// sidecar runs (its CPU per publish with tracing on and off).
//
//   auto server = start_server_span(tracer, req, "127.0.0.1", port, emit_b3);  // injects
//   server_span_scope scope(server.context());  // while the handler runs
//   auto producer = start_producer_span(tracer, req.headers, "embedded", "pubsub", "orders");
//   ... build the message with producer's traceparent (build_message(in, meta, &id_text)) ...
//   note_message(producer, msg, id_text);
//   producer.end();
//   set_error_from_status(server, 204, true);
//   server.end();     // or: respond through ending_on_response(server.take_recording(), r)
//
// Thread-safety: stateless; spans follow tracer.h's rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backends/backend.h"
#include "http/handler.h"
#include "http/message.h"
#include "tracing/tracer.h"

namespace outrider::sidecar {

// "<a> <b>" for span names, in a stack buffer when it fits (no heap allocation
// on the request path).
class joined_name {
 public:
  joined_name(std::string_view a, std::string_view b);
  joined_name(const joined_name&) = delete;
  joined_name& operator=(const joined_name&) = delete;
  std::string_view view() const noexcept { return view_; }

 private:
  char buf_[160];
  std::string long_;
  std::string_view view_;
};

// http.route for the API's paths (span names stay low-cardinality): a
// constant, or `path` itself for paths without parameters.
std::string_view api_route(std::string_view path) noexcept;

// The sidecar's value for messaging.system: OTel's well-known names where one
// exists, else the backend type.
std::string_view messaging_system(std::string_view backend_type) noexcept;

// The trace context an inbound message carries (traceparent/tracestate, else b3).
std::optional<tracing::span_context> incoming_context(const http::fields& headers);

// Replaces the trace headers of `headers` with `span`'s context, so what is
// sent (or handled) next continues the trace as its child. B3 headers are
// removed (and `b3` written when `emit_b3`).
void inject_context(http::fields& headers, const tracing::active_span& span, bool emit_b3);

// The SERVER span of an API call: a child of the caller's context (a new trace
// without one), with the HTTP server attributes; `req.headers` then carry the
// span's own context (inject_context), so what the handler sends on with them
// continues the trace as the span's child. `inject` false: they are left as
// they came, for a handler that passes no headers on (a publish: its PRODUCER
// span's parent comes from server_span_scope, and the message carries the
// PRODUCER span's context).
tracing::active_span start_server_span(const tracing::tracer& tracer, http::request& req,
                                       std::string_view listen_host, std::uint16_t port,
                                       bool emit_b3, bool inject = true);

// True for the API's publish paths (single and bulk), whose handlers pass no
// request headers on (start_server_span's `inject`).
bool passes_no_headers_on(std::string_view path) noexcept;

// The SERVER span's context of the request whose handler runs on this thread,
// while the handler runs synchronously inside the scope (sidecar.cpp traced()):
// the PRODUCER span of a publish takes its parent from here instead of parsing
// back the headers inject_context wrote. Scopes nest; null outside any.
class server_span_scope {
 public:
  explicit server_span_scope(const tracing::span_context& context) noexcept;
  ~server_span_scope();
  server_span_scope(const server_span_scope&) = delete;
  server_span_scope& operator=(const server_span_scope&) = delete;
  static const tracing::span_context* current() noexcept;

 private:
  const tracing::span_context* previous_;
};

// The PRODUCER span of a publish: a child of the SERVER span's context
// (server_span_scope::current()), else of the context in `headers`. Its
// context is the message's creation context. `start_time`: when it starts
// (the publish's own reading of the clock, the CloudEvent's time: no second
// reading); null: now.
tracing::active_span start_producer_span(const tracing::tracer& tracer, const http::fields& headers,
                                         std::string_view backend_type, std::string_view pubsub,
                                         std::string_view topic,
                                         const wall_time* start_time = nullptr);

// What a publish span records about the message: id (`id_text`: m.id's text,
// as build_message gave it), body size, scheduled time.
void note_message(tracing::active_span& span, const backends::message& m, std::string_view id_text);

// http.response.status_code, and ERROR status for 5xx (servers) or 4xx/5xx (clients), as OTel says.
void set_error_from_status(tracing::span_recording& span, int status, bool server_side);

// `inner` ending the SERVER span `span` (its recording: the context is not
// needed to end it) with the response's status just before it answers: a
// hook in `inner`'s own state (http::responder::with_hook; no allocation, no
// wrapper around `inner`).
http::responder ending_on_response(tracing::span_recording&& span, http::responder inner);

}  // namespace outrider::sidecar
