// OTLP/JSON and Zipkin v2 JSON written straight from recorded spans (the
// exporter's JSON encodings), without building `span` objects first. The
// output is byte for byte what encode_otlp_json / zipkin_json_list give for
// the records' to_span() (recorded_span_test.cpp checks it, and decodes it).
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>

#include "base/json_text.h"
#include "tracing/detail/json_attributes.h"
#include "tracing/detail/otlp_mapping.h"
#include "tracing/recorded_span.h"

namespace outrider::tracing {
namespace {

constexpr std::int64_t nanos_per_micro = 1000;
constexpr char hex_digits[] = "0123456789abcdef";

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_hex16(std::string& out, std::uint64_t v) {
  char buf[16];
  for (int i = 15; i >= 0; --i) {
    buf[i] = hex_digits[v & 0xf];
    v >>= 4;
  }
  out.append(buf, sizeof buf);
}

// The attribute's value as text (Zipkin tags); numbers go to `scratch`.
std::string_view value_text(const recorded_span& s, const recorded_span::attribute& a,
                            std::string& scratch) {
  using t = attribute_value::type;
  switch (a.kind) {
    case t::string: return s.text(a.text);
    case t::boolean: return a.number != 0 ? "true" : "false";
    case t::int64: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, a.number);
      scratch.assign(buf, end);
      return scratch;
    }
    case t::float64:
      scratch = attribute_value::of_double(std::bit_cast<double>(a.number)).to_text();
      return scratch;
    default: return {};
  }
}

// A recorded attribute's value in OTLP/JSON's AnyValue shape (as json_encode.cpp's).
void append_any_value(std::string& out, const recorded_span& s, const recorded_span::attribute& a) {
  using t = attribute_value::type;
  switch (a.kind) {
    case t::string:
      out += "{\"stringValue\":";
      append_json_string(out, s.text(a.text));
      break;
    case t::boolean: out += a.number != 0 ? "{\"boolValue\":true" : "{\"boolValue\":false"; break;
    case t::int64:
      out += "{\"intValue\":\"";
      append_int(out, a.number);
      out += '"';
      break;
    case t::float64: {
      const double d = std::bit_cast<double>(a.number);
      out += "{\"doubleValue\":";
      const std::string text = attribute_value::of_double(d).to_text();
      if (std::isfinite(d)) {
        out += text;
      } else {
        append_json_string(out, text);
      }
      break;
    }
    default: out += "{}"; return;
  }
  out += '}';
}

void otlp_json_span(std::string& out, const recorded_span& s) {
  out += "{\"name\":";
  append_json_string(out, s.text(s.name));
  out += ",\"traceId\":\"";
  append_hex16(out, s.trace_id.high);
  append_hex16(out, s.trace_id.low);
  out += "\",\"spanId\":\"";
  append_hex16(out, s.span_id);
  out += '"';
  if (s.parent_id != 0) {
    out += ",\"parentSpanId\":\"";
    append_hex16(out, s.parent_id);
    out += '"';
  }
  if (s.trace_state.size != 0) {
    out += ",\"traceState\":";
    append_json_string(out, s.text(s.trace_state));
  }
  out += ",\"flags\":";
  append_int(out, s.flags);
  out += ",\"kind\":";
  append_int(out, static_cast<int>(s.kind));  // OTLP's numbering
  out += ",\"startTimeUnixNano\":\"";
  append_int(out, s.start_ns);
  out += "\",\"endTimeUnixNano\":\"";
  append_int(out, s.end_ns);
  out += "\",\"attributes\":[";
  for (std::size_t i = 0; i < s.attribute_count(); ++i) {
    const auto& a = s.attribute_at(i);
    if (i > 0) out += ',';
    out += "{\"key\":";
    append_json_string(out, s.key_of(a));
    out += ",\"value\":";
    append_any_value(out, s, a);
    out += '}';
  }
  out += ']';
  if (!s.events.empty()) {
    out += ",\"events\":[";
    for (std::size_t e = 0; e < s.events.size(); ++e) {
      if (e > 0) out += ',';
      out += "{\"timeUnixNano\":\"";
      append_int(out, s.events[e].time_ns);
      out += "\",\"name\":";
      append_json_string(out, s.events[e].name);
      out += ",\"attributes\":";
      detail::append_otlp_attributes(out, s.events[e].attributes);
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
      out += ",\"traceId\":\"";
      append_hex16(out, link.trace_id.high);
      append_hex16(out, link.trace_id.low);
      out += "\",\"spanId\":\"";
      append_hex16(out, link.span_id);
      out += "\",\"attributes\":";
      detail::append_otlp_attributes(out, link.attributes);
      out += '}';
    }
    out += ']';
  }
  if (s.status != status_code::unset || s.status_message.size != 0) {
    out += ",\"status\":{\"code\":";
    append_int(out, static_cast<int>(s.status));
    out += ",\"message\":";
    append_json_string(out, s.text(s.status_message));
    out += '}';
  }
  out += '}';
}

void append_lower_json_string(std::string& out, std::string_view text) {
  thread_local std::string lowered;
  lowered.assign(text);
  for (auto& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  append_json_string(out, lowered);
}

// A Zipkin tag whose value is either stable text or a piece of `scratch`.
struct tag {
  std::string_view key;
  std::string_view value;    // when !in_scratch
  std::uint32_t offset = 0;  // in scratch
  std::uint32_t size = 0;
  bool in_scratch = false;
};

void zipkin_span(std::string& out, const recorded_span& s) {
  out += "{\"traceId\":\"";
  if (s.trace_id.high != 0) append_hex16(out, s.trace_id.high);
  append_hex16(out, s.trace_id.low);
  out += '"';
  if (s.parent_id != 0) {
    out += ",\"parentId\":\"";
    append_hex16(out, s.parent_id);
    out += '"';
  }
  out += ",\"id\":\"";
  append_hex16(out, s.span_id);
  out += '"';
  if (const auto k = to_string(s.kind); !k.empty()) {
    out += ",\"kind\":\"";
    out += k;
    out += '"';
  }
  if (s.name.size != 0) {
    out += ",\"name\":";
    append_lower_json_string(out, s.text(s.name));
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
  if (const auto service = s.service_name(); !service.empty()) {
    out += ",\"localEndpoint\":{\"serviceName\":";
    append_lower_json_string(out, service);
    out += '}';
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
  // Tags: sorted by key (Zipkin's TreeMap); the span's own attributes win over derived ones.
  thread_local std::vector<tag> tags;
  thread_local std::string scratch;  // number texts
  thread_local std::string one;
  tags.clear();
  scratch.clear();
  const auto add_scratch = [&](std::string_view key, std::string_view text) {
    tag t;
    t.key = key;
    t.offset = static_cast<std::uint32_t>(scratch.size());
    t.size = static_cast<std::uint32_t>(text.size());
    t.in_scratch = true;
    scratch.append(text);
    tags.push_back(t);
  };
  for (std::size_t i = 0; i < s.attribute_count(); ++i) {
    const auto& a = s.attribute_at(i);
    if (a.kind == attribute_value::type::string || a.kind == attribute_value::type::boolean) {
      tags.push_back({s.key_of(a), value_text(s, a, one)});
    } else {
      add_scratch(s.key_of(a), value_text(s, a, one));
    }
  }
  if (s.status != status_code::unset) tags.push_back({"otel.status_code", to_string(s.status)});
  if (s.status == status_code::error) tags.push_back({"error", s.text(s.status_message)});
  if (s.resource != nullptr) {
    if (!s.resource->scope_name.empty())
      tags.push_back({"otel.scope.name", s.resource->scope_name});
    if (!s.resource->scope_version.empty()) {
      tags.push_back({"otel.scope.version", s.resource->scope_version});
    }
    for (const auto& kv : s.resource->attributes) {
      if (kv.key == "service.name") continue;
      if (kv.value.kind == attribute_value::type::string) {
        tags.push_back({kv.key, kv.value.string_value});
      } else {
        add_scratch(kv.key, kv.value.to_text());
      }
    }
  }
  if (tags.empty()) {
    out += '}';
    return;
  }
  std::stable_sort(tags.begin(), tags.end(),
                   [](const tag& a, const tag& b) { return a.key < b.key; });
  out += ",\"tags\":{";
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (i > 0 && tags[i].key == tags[i - 1].key) continue;  // the first of equal keys wins
    if (i > 0) out += ',';
    append_json_string(out, tags[i].key);
    out += ':';
    append_json_string(out, tags[i].in_scratch
                                ? std::string_view(scratch).substr(tags[i].offset, tags[i].size)
                                : tags[i].value);
  }
  out += "}}";
}

// Room for `n` spans the size of the first (plus some): one allocation for a
// fresh body instead of a chain of doublings (each a page-faulting copy).
void reserve_like_first(std::string& out, std::size_t first_size, std::size_t n) {
  out.reserve(out.size() + (first_size + first_size / 8 + 16) * n);
}

}  // namespace

void append_otlp_json_span(std::string& out, const recorded_span& s) {
  otlp_json_span(out, s);
}

void append_zipkin_json_span(std::string& out, const recorded_span& s) {
  zipkin_span(out, s);
}

void append_otlp_json_group_open(std::string& out, const span_resource* resource) {
  static const auto no_resource = [] {
    span_resource r;
    r.attributes.push_back(
        {"service.name", attribute_value::of(std::string(detail::unknown_service))});
    return r;
  }();
  const span_resource& res = resource != nullptr ? *resource : no_resource;
  out += "{\"resource\":{\"attributes\":";
  detail::append_otlp_attributes(out, res.attributes);
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":";
  append_json_string(out, res.scope_name);
  out += ",\"version\":";
  append_json_string(out, res.scope_version);
  out += "},\"spans\":[";
}

void append_otlp_json(std::string& out, std::span<const recorded_span_ptr> spans) {
  // Resources in first-seen order (a sidecar has one).
  std::vector<const span_resource*> resources;
  for (const auto& s : spans) {
    const span_resource* r = s->resource.get();
    if (std::find(resources.begin(), resources.end(), r) == resources.end()) resources.push_back(r);
  }
  out += "{\"resourceSpans\":[";
  bool first_group = true;
  for (const span_resource* r : resources) {
    if (!first_group) out += ',';
    first_group = false;
    append_otlp_json_group_open(out, r);
    bool first = true;
    for (const auto& s : spans) {
      if (s->resource.get() != r) continue;
      if (!first) out += ',';
      const std::size_t before = out.size();
      otlp_json_span(out, *s);
      if (first) reserve_like_first(out, out.size() - before, spans.size());
      first = false;
    }
    out += otlp_json_group_close;
  }
  out += "]}";
}

void append_zipkin_json_list(std::string& out, std::span<const recorded_span_ptr> spans) {
  out += '[';
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    const std::size_t before = out.size();
    zipkin_span(out, *spans[i]);
    if (i == 0) reserve_like_first(out, out.size() - before, spans.size());
  }
  out += ']';
}

}  // namespace outrider::tracing
