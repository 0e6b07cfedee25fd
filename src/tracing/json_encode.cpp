// Spans to JSON: the Zipkin v2 view (query API) and the native view
// (Outrider's UI). Hand-written with append_json_string: hot path, no library.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "base/json_text.h"
#include "tracing/codec.h"
#include "tracing/detail/json_attributes.h"
#include "tracing/detail/otlp_mapping.h"

namespace outrider::tracing {
namespace {

constexpr std::int64_t nanos_per_micro = 1000;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_quoted_int(std::string& out, std::int64_t v) {
  out += '"';
  append_int(out, v);
  out += '"';
}

void append_zipkin_endpoint(std::string& out, const endpoint& e) {
  out += '{';
  bool first = true;
  auto sep = [&] {
    if (!first) out += ',';
    first = false;
  };
  if (!e.service_name.empty()) {
    sep();
    out += "\"serviceName\":";
    append_json_string(out, lower(e.service_name));
  }
  if (!e.ipv4.empty()) {
    sep();
    out += "\"ipv4\":";
    append_json_string(out, e.ipv4);
  }
  if (!e.ipv6.empty()) {
    sep();
    out += "\"ipv6\":";
    append_json_string(out, e.ipv6);
  }
  if (e.port != 0) {
    sep();
    out += "\"port\":";
    append_int(out, e.port);
  }
  out += '}';
}

void append_any_value(std::string& out, const attribute_value& v);

void append_attributes(std::string& out, const attribute_list& attrs) {
  out += '[';
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"key\":";
    append_json_string(out, attrs[i].key);
    out += ",\"value\":";
    append_any_value(out, attrs[i].value);
    out += '}';
  }
  out += ']';
}

// OTLP/JSON's AnyValue shape, so the UI sees typed values.
void append_any_value(std::string& out, const attribute_value& v) {
  switch (v.kind) {
    case attribute_value::type::empty: out += "{}"; return;
    case attribute_value::type::string:
      out += "{\"stringValue\":";
      append_json_string(out, v.string_value);
      break;
    case attribute_value::type::boolean:
      out += v.bool_value ? "{\"boolValue\":true" : "{\"boolValue\":false";
      break;
    case attribute_value::type::int64:
      out += "{\"intValue\":";
      append_quoted_int(out, v.int_value);
      break;
    case attribute_value::type::float64:
      out += "{\"doubleValue\":";
      if (std::isfinite(v.double_value)) {
        out += v.to_text();
      } else {
        append_json_string(out, v.to_text());
      }
      break;
    case attribute_value::type::bytes:
      out += "{\"bytesValue\":";
      append_json_string(out, v.to_text());
      break;
    case attribute_value::type::array:
      out += "{\"arrayValue\":{\"values\":[";
      for (std::size_t i = 0; i < v.array.size(); ++i) {
        if (i > 0) out += ',';
        append_any_value(out, v.array[i]);
      }
      out += "]}";
      break;
    case attribute_value::type::kvlist:
      out += "{\"kvlistValue\":{\"values\":";
      append_attributes(out, v.kvlist);
      out += '}';
      break;
  }
  out += '}';
}

void append_native_endpoint(std::string& out, const endpoint& e) {
  out += "{\"serviceName\":";
  append_json_string(out, e.service_name);
  if (!e.ipv4.empty()) {
    out += ",\"ipv4\":";
    append_json_string(out, e.ipv4);
  }
  if (!e.ipv6.empty()) {
    out += ",\"ipv6\":";
    append_json_string(out, e.ipv6);
  }
  if (e.port != 0) {
    out += ",\"port\":";
    append_int(out, e.port);
  }
  out += '}';
}

std::string_view native_kind(span_kind k) {
  switch (k) {
    case span_kind::unspecified: return "UNSPECIFIED";
    case span_kind::internal: return "INTERNAL";
    default: return to_string(k);
  }
}

}  // namespace

void detail::append_otlp_attributes(std::string& out, const attribute_list& attrs) {
  append_attributes(out, attrs);
}

void append_zipkin_json(std::string& out, const span& s) {
  out += "{\"traceId\":\"";
  out += trace_id_hex(s.trace_id);
  out += '"';
  if (s.parent_id != 0) {
    out += ",\"parentId\":\"";
    out += to_hex16(s.parent_id);
    out += '"';
  }
  out += ",\"id\":\"";
  out += to_hex16(s.span_id);
  out += '"';
  if (const auto k = to_string(s.kind); !k.empty()) {
    out += ",\"kind\":\"";
    out += k;
    out += '"';
  }
  if (!s.name.empty()) {
    out += ",\"name\":";
    append_json_string(out, lower(s.name));
  }
  if (s.start_ns > 0) {
    out += ",\"timestamp\":";
    append_int(out, s.start_ns / nanos_per_micro);
  }
  if (s.end_ns > s.start_ns) {
    out += ",\"duration\":";
    append_int(out, std::max<std::int64_t>(
                        1, (s.end_ns - s.start_ns + nanos_per_micro - 1) / nanos_per_micro));
  }
  if (!s.local_endpoint.empty()) {
    out += ",\"localEndpoint\":";
    append_zipkin_endpoint(out, s.local_endpoint);
  }
  if (!s.remote_endpoint.empty()) {
    out += ",\"remoteEndpoint\":";
    append_zipkin_endpoint(out, s.remote_endpoint);
  }
  if (!s.events.empty()) {
    std::vector<const span_event*> events;
    events.reserve(s.events.size());
    for (const auto& e : s.events) events.push_back(&e);
    std::stable_sort(events.begin(), events.end(), [](const span_event* a, const span_event* b) {
      return a->time_ns < b->time_ns;
    });
    out += ",\"annotations\":[";
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"timestamp\":";
      append_int(out, events[i]->time_ns / nanos_per_micro);
      out += ",\"value\":";
      append_json_string(out, events[i]->name);
      out += '}';
    }
    out += ']';
  }
  // Tags: a sorted map (as Zipkin's TreeMap); the span's own attributes win over derived ones.
  std::vector<std::pair<std::string, std::string>> tags;
  tags.reserve(s.attributes.size() + 4);
  for (const auto& kv : s.attributes) tags.emplace_back(kv.key, kv.value.to_text());
  if (s.status.code != status_code::unset)
    tags.emplace_back("otel.status_code", std::string(to_string(s.status.code)));
  if (s.status.code == status_code::error) tags.emplace_back("error", s.status.message);
  if (s.resource != nullptr) {
    if (!s.resource->scope_name.empty())
      tags.emplace_back("otel.scope.name", s.resource->scope_name);
    if (!s.resource->scope_version.empty())
      tags.emplace_back("otel.scope.version", s.resource->scope_version);
    for (const auto& kv : s.resource->attributes) {
      if (kv.key != "service.name") tags.emplace_back(kv.key, kv.value.to_text());
    }
  }
  if (!tags.empty()) {
    std::stable_sort(tags.begin(), tags.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    tags.erase(std::unique(tags.begin(), tags.end(),
                           [](const auto& a, const auto& b) { return a.first == b.first; }),
               tags.end());
    out += ",\"tags\":{";
    for (std::size_t i = 0; i < tags.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, tags[i].first);
      out += ':';
      append_json_string(out, tags[i].second);
    }
    out += '}';
  }
  if (s.debug) out += ",\"debug\":true";
  if (s.shared) out += ",\"shared\":true";
  out += '}';
}

std::string zipkin_json_list(const std::vector<span>& spans) {
  std::string out = "[";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    append_zipkin_json(out, spans[i]);
  }
  out += ']';
  return out;
}

void append_native_json(std::string& out, const span& s) {
  out += "{\"traceId\":\"";
  out += to_hex16(s.trace_id.high) + to_hex16(s.trace_id.low);
  out += "\",\"spanId\":\"";
  out += to_hex16(s.span_id);
  out += '"';
  if (s.parent_id != 0) {
    out += ",\"parentSpanId\":\"";
    out += to_hex16(s.parent_id);
    out += '"';
  }
  out += ",\"name\":";
  append_json_string(out, s.name);
  out += ",\"kind\":\"";
  out += native_kind(s.kind);
  out += "\",\"startTimeUnixNano\":";
  append_quoted_int(out, s.start_ns);
  out += ",\"endTimeUnixNano\":";
  append_quoted_int(out, s.end_ns);
  out += ",\"serviceName\":";
  append_json_string(out, s.service_name());
  if (!s.trace_state.empty()) {
    out += ",\"traceState\":";
    append_json_string(out, s.trace_state);
  }
  if (s.flags != 0) {
    out += ",\"flags\":";
    append_int(out, s.flags);
  }
  out += ",\"localEndpoint\":";
  append_native_endpoint(out, s.local_endpoint);
  if (!s.remote_endpoint.empty()) {
    out += ",\"remoteEndpoint\":";
    append_native_endpoint(out, s.remote_endpoint);
  }
  out += ",\"attributes\":";
  append_attributes(out, s.attributes);
  out += ",\"events\":[";
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"timeUnixNano\":";
    append_quoted_int(out, s.events[i].time_ns);
    out += ",\"name\":";
    append_json_string(out, s.events[i].name);
    out += ",\"attributes\":";
    append_attributes(out, s.events[i].attributes);
    out += '}';
  }
  out += "],\"links\":[";
  for (std::size_t i = 0; i < s.links.size(); ++i) {
    const auto& l = s.links[i];
    if (i > 0) out += ',';
    out += "{\"traceId\":\"";
    out += to_hex16(l.trace_id.high) + to_hex16(l.trace_id.low);
    out += "\",\"spanId\":\"";
    out += to_hex16(l.span_id);
    out += '"';
    if (!l.trace_state.empty()) {
      out += ",\"traceState\":";
      append_json_string(out, l.trace_state);
    }
    out += ",\"attributes\":";
    append_attributes(out, l.attributes);
    out += '}';
  }
  out += "],\"status\":{\"code\":\"";
  out += to_string(s.status.code);
  out += '"';
  if (!s.status.message.empty()) {
    out += ",\"message\":";
    append_json_string(out, s.status.message);
  }
  out += '}';
  if (s.resource != nullptr) {
    out += ",\"resource\":{\"attributes\":";
    append_attributes(out, s.resource->attributes);
    out += "},\"scope\":{\"name\":";
    append_json_string(out, s.resource->scope_name);
    out += ",\"version\":";
    append_json_string(out, s.resource->scope_version);
    out += '}';
  }
  if (s.dropped_attributes + s.dropped_events + s.dropped_links > 0) {
    out += ",\"droppedAttributesCount\":";
    append_int(out, s.dropped_attributes);
    out += ",\"droppedEventsCount\":";
    append_int(out, s.dropped_events);
    out += ",\"droppedLinksCount\":";
    append_int(out, s.dropped_links);
  }
  if (s.debug) out += ",\"debug\":true";
  if (s.shared) out += ",\"shared\":true";
  out += '}';
}

namespace {

void append_hex_id(std::string& out, std::string_view key, std::string hex) {
  out += ",\"";
  out += key;
  out += "\":\"";
  out += hex;
  out += '"';
}

int otlp_kind_number(span_kind k) {
  return static_cast<int>(k);  // our enum follows OTLP's numbering (0 unspecified .. 5 consumer)
}

}  // namespace

std::string encode_otlp_json(const std::vector<span>& spans) {
  std::string out = "{\"resourceSpans\":[";
  bool first_group = true;
  detail::for_each_resource_group(
      spans, [&](const span_resource& res, const std::vector<const span*>& group) {
        if (!first_group) out += ',';
        first_group = false;
        out += "{\"resource\":{\"attributes\":";
        append_attributes(out, res.attributes);
        out += "},\"scopeSpans\":[{\"scope\":{\"name\":";
        append_json_string(out, res.scope_name);
        out += ",\"version\":";
        append_json_string(out, res.scope_version);
        out += "},\"spans\":[";
        for (std::size_t i = 0; i < group.size(); ++i) {
          const span& s = *group[i];
          if (i > 0) out += ',';
          out += "{\"name\":";
          append_json_string(out, s.name);
          append_hex_id(out, "traceId", s.trace_id.to_hex());
          append_hex_id(out, "spanId", to_hex16(s.span_id));
          if (s.parent_id != 0) append_hex_id(out, "parentSpanId", to_hex16(s.parent_id));
          if (!s.trace_state.empty()) {
            out += ",\"traceState\":";
            append_json_string(out, s.trace_state);
          }
          out += ",\"flags\":";
          append_int(out, s.flags);
          out += ",\"kind\":";
          append_int(out, otlp_kind_number(s.kind));
          out += ",\"startTimeUnixNano\":";
          append_quoted_int(out, s.start_ns);
          out += ",\"endTimeUnixNano\":";
          append_quoted_int(out, s.end_ns);
          out += ",\"attributes\":";
          append_attributes(out, s.attributes);
          if (!s.events.empty()) {
            out += ",\"events\":[";
            for (std::size_t e = 0; e < s.events.size(); ++e) {
              if (e > 0) out += ',';
              out += "{\"timeUnixNano\":";
              append_quoted_int(out, s.events[e].time_ns);
              out += ",\"name\":";
              append_json_string(out, s.events[e].name);
              out += ",\"attributes\":";
              append_attributes(out, s.events[e].attributes);
              out += '}';
            }
            out += ']';
          }
          if (!s.links.empty()) {
            out += ",\"links\":[";
            for (std::size_t l = 0; l < s.links.size(); ++l) {
              const auto& link = s.links[l];
              if (l > 0) out += ',';
              out += "{\"traceState\":";
              append_json_string(out, link.trace_state);
              append_hex_id(out, "traceId", link.trace_id.to_hex());
              append_hex_id(out, "spanId", to_hex16(link.span_id));
              out += ",\"attributes\":";
              append_attributes(out, link.attributes);
              out += '}';
            }
            out += ']';
          }
          if (s.status.code != status_code::unset || !s.status.message.empty()) {
            out += ",\"status\":{\"code\":";
            append_int(out, static_cast<int>(s.status.code));
            out += ",\"message\":";
            append_json_string(out, s.status.message);
            out += '}';
          }
          out += '}';
        }
        out += "]}]}";
      });
  out += "]}";
  return out;
}

}  // namespace outrider::tracing
