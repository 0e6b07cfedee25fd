#include "sidecar/request_tracing.h"

#include <algorithm>
#include <charconv>

#include "sidecar/cloud_event.h"
#include "tracing/trace_context.h"

namespace outrider::sidecar {
using tracing::attr;

namespace {

std::int64_t unix_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// "3" for 3: status codes as error.type without a heap string.
std::string_view status_text(int status, char (&buf)[16]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, status);
  return ec == std::errc() ? std::string_view(buf, static_cast<std::size_t>(end - buf))
                           : std::string_view();
}

}  // namespace

joined_name::joined_name(std::string_view a, std::string_view b) {
  if (a.size() + 1 + b.size() <= sizeof buf_) {
    char* end = std::copy(a.begin(), a.end(), buf_);
    *end++ = ' ';
    end = std::copy(b.begin(), b.end(), end);
    view_ = std::string_view(buf_, static_cast<std::size_t>(end - buf_));
  } else {
    long_.reserve(a.size() + 1 + b.size());
    long_.append(a).append(" ").append(b);
    view_ = long_;
  }
}

namespace {

// The API's paths with parameters: their route, and whether their handlers pass
// no request headers on (the publishes).
struct prefix_route {
  std::string_view prefix;
  std::string_view route;
  bool passes_no_headers_on = false;
};
constexpr prefix_route api_routes[] = {
    {"/v1.0/publish/", "/v1.0/publish/{pubsub}/{topic}", true},
    {"/v1.0-alpha1/publish/bulk/", "/v1.0-alpha1/publish/bulk/{pubsub}/{topic}", true},
    {"/v1.0-alpha1/outrider/scheduled/", "/v1.0-alpha1/outrider/scheduled/{pubsub}/{id}"},
    {"/v1.0/invoke/", "/v1.0/invoke/{appId}/method/{*path}"},
    {"/v1.0/bindings/", "/v1.0/bindings/{name}"},
    {"/v1.0/jobs/", "/v1.0/jobs/{name}"},
    {"/v1.0-alpha1/jobs/", "/v1.0-alpha1/jobs/{name}"},
};

const prefix_route* find_api_route(std::string_view path) noexcept {
  for (const auto& r : api_routes) {
    if (path.starts_with(r.prefix)) return &r;
  }
  return nullptr;
}

}  // namespace

std::string_view api_route(std::string_view path) noexcept {
  const prefix_route* r = find_api_route(path);
  return r != nullptr ? r->route : path;
}

bool passes_no_headers_on(std::string_view path) noexcept {
  const prefix_route* r = find_api_route(path);
  return r != nullptr && r->passes_no_headers_on;
}

std::string_view messaging_system(std::string_view backend_type) noexcept {
  return backend_type == "embedded" ? std::string_view("outrider") : backend_type;
}

std::optional<tracing::span_context> incoming_context(const http::fields& headers) {
  std::string storage;
  return tracing::extract_context(tracing::carrier_from_fields(headers, storage));
}

namespace {

// inject_context once what to remove is known: the B3 fields (`b3`), a
// tracestate the span does not carry on (`tracestate`). `traceparent_written`:
// the traceparent field has the span's already.
void replace_context(http::fields& headers, const tracing::active_span& span, bool emit_b3, bool b3,
                     bool tracestate, bool traceparent_written = false) {
  if (b3) {
    for (auto name :
         {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags", "x-b3-parentspanid"}) {
      headers.erase(name);
    }
  }
  const auto& c = span.context();
  if (!traceparent_written) {
    char traceparent[tracing::traceparent_size];
    tracing::write_traceparent(c.trace_id, c.span_id, c.flags, traceparent);
    headers.set(header_traceparent, std::string_view(traceparent, sizeof traceparent));
  }
  if (!span.tracestate().empty()) {
    headers.set(header_tracestate, span.tracestate());
  } else if (tracestate) {
    headers.erase(header_tracestate);
  }
  if (emit_b3) headers.set("b3", tracing::format_b3_single(c));
}

}  // namespace

void inject_context(http::fields& headers, const tracing::active_span& span, bool emit_b3) {
  // One pass to see whether there is anything to remove (usually nothing but
  // the caller's traceparent, which set() replaces).
  bool b3 = false;
  bool tracestate = false;
  for (const auto& f : headers) {
    const std::string_view name = f.name;
    if (name.size() >= 2 &&
        (name[0] == 'b' || name[0] == 'B' || name[0] == 'x' || name[0] == 'X')) {
      b3 = b3 || http::iequals(name, "b3") ||
           (name.size() > 5 && http::iequals(name.substr(0, 5), "x-b3-"));
    } else if (!tracestate && http::iequals(name, header_tracestate)) {
      tracestate = true;
    }
  }
  replace_context(headers, span, emit_b3, b3, tracestate);
}

tracing::active_span start_server_span(const tracing::tracer& tracer, http::request& req,
                                       std::string_view listen_host, std::uint16_t port,
                                       bool emit_b3, bool inject) {
  // One pass over the headers: the caller's context, and what injecting ours replaces.
  std::string storage;
  const tracing::carrier_headers carrier = tracing::carrier_from_fields(req.headers, storage);
  tracing::span_context caller;
  const bool has_caller = tracing::extract_context(carrier, caller);
  const std::string_view route = api_route(req.path);
  auto span = tracer.start_span(req.method, route, tracing::span_kind::server,
                                has_caller ? &caller : nullptr,
                                {{attr::http_request_method, req.method},
                                 {attr::http_route, route},
                                 {attr::url_path, req.path},
                                 {attr::url_scheme, "http"},
                                 {attr::server_address, listen_host}});
  if (span.recording()) {
    span.set(attr::server_port, std::int64_t{port});
    const auto colon = req.remote_address.rfind(':');
    if (colon != std::string::npos) {
      span.set(attr::client_address, std::string_view(req.remote_address).substr(0, colon));
    }
  }
  if (!inject) return span;
  // The usual request has one traceparent field of a traceparent's size (the
  // caller's): it takes the span's in place, instead of fields::set looking for
  // it again (and for others to remove). `carrier.traceparent` views that
  // field's value in `req.headers`.
  bool in_place = false;
  if (carrier.traceparents == 1 && carrier.traceparent.size() == tracing::traceparent_size) {
    const auto& c = span.context();
    char text[tracing::traceparent_size];
    tracing::write_traceparent(c.trace_id, c.span_id, c.flags, text);
    in_place =
        req.headers.overwrite_value(carrier.traceparent, std::string_view(text, sizeof text));
  }
  replace_context(req.headers, span, emit_b3, carrier.any_b3, carrier.any_tracestate, in_place);
  return span;
}

namespace {
thread_local const tracing::span_context* current_server_context = nullptr;
}  // namespace

server_span_scope::server_span_scope(const tracing::span_context& context) noexcept
    : previous_(current_server_context) {
  current_server_context = &context;
}

server_span_scope::~server_span_scope() {
  current_server_context = previous_;
}

const tracing::span_context* server_span_scope::current() noexcept {
  return current_server_context;
}

tracing::active_span start_producer_span(const tracing::tracer& tracer, const http::fields& headers,
                                         std::string_view backend_type, std::string_view pubsub,
                                         std::string_view topic, const wall_time* start_time) {
  std::optional<tracing::span_context> parsed;
  const tracing::span_context* parent = server_span_scope::current();
  if (parent == nullptr) {
    parsed = incoming_context(headers);
    if (parsed) parent = &*parsed;
  }
  return tracer.start_span("publish", topic, tracing::span_kind::producer, parent,
                           {{attr::messaging_system, messaging_system(backend_type)},
                            {attr::messaging_destination_name, topic},
                            {attr::messaging_operation_type, "send"},
                            {attr::messaging_operation_name, "publish"},
                            {attr::outrider_pubsub_name, pubsub}},
                           start_time);
}

void note_message(tracing::active_span& span, const backends::message& m,
                  std::string_view id_text) {
  if (!span.recording()) return;
  span.set(attr::messaging_message_id, id_text);
  span.set(attr::messaging_message_body_size, static_cast<std::int64_t>(m.body.size()));
  if (m.deliver_at > wall_time{}) {
    span.set(attr::outrider_message_scheduled_time_ms, unix_ms(m.deliver_at));
  }
}

void set_error_from_status(tracing::span_recording& span, int status, bool server_side) {
  if (!span.recording()) return;
  span.set(attr::http_response_status_code, std::int64_t{status});
  // OTel: 5xx is an error for servers; 4xx and 5xx for clients.
  if (status >= 500 || (!server_side && status >= 400)) {
    char buf[16];
    const std::string_view code = status_text(status, buf);
    span.set(attr::error_type, code);
    char message[32] = "HTTP ";
    std::copy(code.begin(), code.end(), message + 5);
    span.set_error(std::string_view(message, 5 + code.size()));
  }
}

http::responder ending_on_response(tracing::span_recording&& span, http::responder inner) {
  // A hook in the responder's own state (http::responder::with_hook: no
  // allocation, no wrapper). It runs exactly once (send(), or the 500 answer of
  // a responder dropped unsent) and lets go of the span then, not when the
  // last copy of the responder goes.
  auto end_span = [span = std::move(span)](http::response& resp) mutable {
    set_error_from_status(span, resp.status, true);
    span.end();
  };
  static_assert(sizeof(end_span) <= http::responder::hook_capacity,
                "the SERVER span's hook fits the responder's state");
  return http::responder::with_hook(std::move(inner), std::move(end_span));
}

}  // namespace outrider::sidecar
