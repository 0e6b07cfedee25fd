// JSON request bodies: OTLP/JSON and Zipkin v2 JSON, parsed with Boost.JSON
// (the only file of the library that includes it).
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <limits>

#include "base/json_text.h"
#include "tracing/codec.h"
#include "tracing/detail/otlp_mapping.h"

namespace outrider::tracing {
namespace {

namespace json = boost::json;

// Nesting allowed by the JSON parser: the OTLP envelope is ~8 levels deep,
// attribute values add two levels per array/kvlist.
constexpr std::size_t max_json_depth = 8 + 2 * max_attribute_depth + 8;
constexpr std::size_t otlp_trace_id_hex = 32;
constexpr std::size_t span_id_hex = 16;
constexpr std::int64_t nanos_per_micro = 1000;

const json::value* member(const json::object& o, std::string_view camel,
                          std::string_view snake = {}) {
  if (const auto* v = o.if_contains(camel)) return v;
  if (!snake.empty()) return o.if_contains(snake);
  return nullptr;
}

const json::array* array_member(const json::object& o, std::string_view camel,
                                std::string_view snake = {}) {
  const auto* v = member(o, camel, snake);
  return v != nullptr ? v->if_array() : nullptr;
}

const json::object* object_member(const json::object& o, std::string_view camel,
                                  std::string_view snake = {}) {
  const auto* v = member(o, camel, snake);
  return v != nullptr ? v->if_object() : nullptr;
}

std::string string_member(const json::object& o, std::string_view camel,
                          std::string_view snake = {}) {
  const auto* v = member(o, camel, snake);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string());
}

// An integer written as a JSON number or a decimal string (OTLP's int64 rule).
std::optional<std::int64_t> as_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    const auto u = v.get_uint64();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return std::nullopt;
    return static_cast<std::int64_t>(std::llround(d));
  }
  if (v.is_string()) {
    const auto s = v.get_string();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

// An unsigned 64-bit integer (fixed64 nanosecond times), number or string.
std::optional<std::uint64_t> as_uint64(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64()) {
    if (v.get_int64() < 0) return std::nullopt;
    return static_cast<std::uint64_t>(v.get_int64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d < 0 || d >= 1.8e19) return std::nullopt;
    return static_cast<std::uint64_t>(d);
  }
  if (v.is_string()) {
    const auto s = v.get_string();
    std::uint64_t out = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

std::optional<double> as_double(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_string()) {
    const auto s = v.get_string();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    double out = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int d = value_of(c);
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// Integer enums (OTLP/JSON's rule) or, leniently, the protobuf enum names.
int enum_value(const json::value* v, std::initializer_list<std::string_view> names) {
  if (v == nullptr) return 0;
  if (auto i = as_int64(*v); i && !v->is_string()) return static_cast<int>(*i);
  if (v->is_string()) {
    int index = 0;
    for (auto n : names) {
      if (v->get_string() == n) return index;
      ++index;
    }
    if (auto i = as_int64(*v)) return static_cast<int>(*i);
  }
  return 0;
}

class otlp_json_decoder {
 public:
  status attributes(const json::object& owner, std::string_view camel, std::string_view snake,
                    attribute_list& out, int depth) {
    const auto* list = array_member(owner, camel, snake);
    if (list == nullptr) return {};
    return key_values(*list, out, depth);
  }

  status key_values(const json::array& list, attribute_list& out, int depth) {
    out.reserve(out.size() + list.size());
    for (const auto& item : list) {
      const auto* kv = item.if_object();
      if (kv == nullptr) return error(errc::malformed_request, "attribute is not an object");
      key_value entry;
      entry.key = string_member(*kv, "key");
      if (const auto* v = object_member(*kv, "value"))
        OUTRIDER_TRY(any_value(*v, entry.value, depth));
      out.push_back(std::move(entry));
    }
    return {};
  }

  status any_value(const json::object& o, attribute_value& out, int depth) {
    if (depth > max_attribute_depth)
      return error(errc::malformed_request, "attribute values nested too deep");
    if (const auto* v = member(o, "stringValue", "string_value")) {
      if (!v->is_string()) return error(errc::malformed_request, "stringValue is not a string");
      out = attribute_value::of(std::string(v->get_string()));
    } else if (const auto* b = member(o, "boolValue", "bool_value")) {
      if (!b->is_bool()) return error(errc::malformed_request, "boolValue is not a boolean");
      out = attribute_value::of_bool(b->get_bool());
    } else if (const auto* i = member(o, "intValue", "int_value")) {
      auto n = as_int64(*i);
      if (!n) return error(errc::malformed_request, "intValue is not a 64-bit integer");
      out = attribute_value::of_int(*n);
    } else if (const auto* d = member(o, "doubleValue", "double_value")) {
      auto x = as_double(*d);
      if (!x) return error(errc::malformed_request, "doubleValue is not a number");
      out = attribute_value::of_double(*x);
    } else if (const auto* bytes = member(o, "bytesValue", "bytes_value")) {
      auto decoded = bytes->is_string() ? base64_decode(bytes->get_string()) : std::nullopt;
      if (!decoded) return error(errc::malformed_request, "bytesValue is not base64");
      out.kind = attribute_value::type::bytes;
      out.string_value = std::move(*decoded);
    } else if (const auto* arr = object_member(o, "arrayValue", "array_value")) {
      out.kind = attribute_value::type::array;
      if (const auto* values = array_member(*arr, "values")) {
        for (const auto& item : *values) {
          const auto* obj = item.if_object();
          if (obj == nullptr) return error(errc::malformed_request, "array value is not an object");
          attribute_value element;
          OUTRIDER_TRY(any_value(*obj, element, depth + 1));
          out.array.push_back(std::move(element));
        }
      }
    } else if (const auto* kvl = object_member(o, "kvlistValue", "kvlist_value")) {
      out.kind = attribute_value::type::kvlist;
      if (const auto* values = array_member(*kvl, "values"))
        OUTRIDER_TRY(key_values(*values, out.kvlist, depth + 1));
    } else {
      out.kind = attribute_value::type::empty;
    }
    return {};
  }

  // Hex id of exactly `digits` digits; "" means absent. nullopt when bad.
  static std::optional<std::string_view> hex_field(const json::object& o, std::string_view camel,
                                                   std::string_view snake) {
    const auto* v = member(o, camel, snake);
    if (v == nullptr || v->is_null()) return std::string_view{};
    if (!v->is_string()) return std::nullopt;
    return std::string_view(v->get_string());
  }

  status time_field(const json::object& o, std::string_view camel, std::string_view snake,
                    std::int64_t& out) {
    const auto* v = member(o, camel, snake);
    if (v == nullptr) return {};
    auto n = as_uint64(*v);
    if (!n)
      return error(errc::malformed_request,
                   std::string(camel) + " is not an unsigned 64-bit integer");
    out = *n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
              ? std::numeric_limits<std::int64_t>::max()
              : static_cast<std::int64_t>(*n);
    return {};
  }

  static std::uint32_t count_field(const json::object& o, std::string_view camel,
                                   std::string_view snake) {
    const auto* v = member(o, camel, snake);
    if (v == nullptr) return 0;
    auto n = as_int64(*v);
    if (!n || *n < 0) return 0;
    return *n > std::numeric_limits<std::uint32_t>::max()
               ? std::numeric_limits<std::uint32_t>::max()
               : static_cast<std::uint32_t>(*n);
  }

  status span_of(const json::object& in, const std::shared_ptr<const span_resource>& resource,
                 decoded_batch& batch) {
    span s;
    bool valid = true;
    auto trace_hex = hex_field(in, "traceId", "trace_id");
    auto span_hex = hex_field(in, "spanId", "span_id");
    auto parent_hex = hex_field(in, "parentSpanId", "parent_span_id");
    if (!trace_hex || !span_hex || !parent_hex)
      return error(errc::malformed_request, "span ids must be strings");
    if (trace_hex->size() == otlp_trace_id_hex && span_hex->size() == span_id_hex) {
      auto t = parse_trace_id(*trace_hex);
      auto id = parse_hex64(*span_hex);
      if (!t || !id) return error(errc::malformed_request, "span ids must be hex");
      s.trace_id = *t;
      s.span_id = *id;
    } else {
      valid = false;
    }
    if (!parent_hex->empty()) {
      auto p = parent_hex->size() == span_id_hex ? parse_hex64(*parent_hex) : std::nullopt;
      if (!p) valid = false;
      s.parent_id = p.value_or(0);
    }
    s.name = string_member(in, "name");
    switch (enum_value(member(in, "kind"),
                       {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                        "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"})) {
      case 1: s.kind = span_kind::internal; break;
      case 2: s.kind = span_kind::server; break;
      case 3: s.kind = span_kind::client; break;
      case 4: s.kind = span_kind::producer; break;
      case 5: s.kind = span_kind::consumer; break;
      default: break;
    }
    OUTRIDER_TRY(time_field(in, "startTimeUnixNano", "start_time_unix_nano", s.start_ns));
    OUTRIDER_TRY(time_field(in, "endTimeUnixNano", "end_time_unix_nano", s.end_ns));
    s.trace_state = string_member(in, "traceState", "trace_state");
    s.flags = count_field(in, "flags", "flags");
    OUTRIDER_TRY(attributes(in, "attributes", "attributes", s.attributes, 0));
    s.dropped_attributes = count_field(in, "droppedAttributesCount", "dropped_attributes_count");
    if (const auto* events = array_member(in, "events")) {
      for (const auto& item : *events) {
        const auto* ev = item.if_object();
        if (ev == nullptr) return error(errc::malformed_request, "event is not an object");
        span_event e;
        OUTRIDER_TRY(time_field(*ev, "timeUnixNano", "time_unix_nano", e.time_ns));
        e.name = string_member(*ev, "name");
        OUTRIDER_TRY(attributes(*ev, "attributes", "attributes", e.attributes, 0));
        s.events.push_back(std::move(e));
      }
    }
    s.dropped_events = count_field(in, "droppedEventsCount", "dropped_events_count");
    if (const auto* links = array_member(in, "links")) {
      for (const auto& item : *links) {
        const auto* ln = item.if_object();
        if (ln == nullptr) return error(errc::malformed_request, "link is not an object");
        auto lt = hex_field(*ln, "traceId", "trace_id");
        auto ls = hex_field(*ln, "spanId", "span_id");
        if (!lt || !ls || lt->size() != otlp_trace_id_hex || ls->size() != span_id_hex) continue;
        auto t = parse_trace_id(*lt);
        auto id = parse_hex64(*ls);
        if (!t || !id) continue;
        span_link l;
        l.trace_id = *t;
        l.span_id = *id;
        l.trace_state = string_member(*ln, "traceState", "trace_state");
        OUTRIDER_TRY(attributes(*ln, "attributes", "attributes", l.attributes, 0));
        s.links.push_back(std::move(l));
      }
    }
    s.dropped_links = count_field(in, "droppedLinksCount", "dropped_links_count");
    if (const auto* st = object_member(in, "status")) {
      switch (enum_value(member(*st, "code"),
                         {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"})) {
        case 1: s.status.code = status_code::ok; break;
        case 2: s.status.code = status_code::error; break;
        default: break;
      }
      s.status.message = string_member(*st, "message");
    }
    s.resource = resource;
    detail::accept_otlp_span(batch, std::move(s), valid);
    return {};
  }

  result<decoded_batch> decode(const json::value& root) {
    const auto* top = root.if_object();
    if (top == nullptr) return error(errc::malformed_request, "OTLP/JSON body must be an object");
    decoded_batch batch;
    const auto* resource_spans = array_member(*top, "resourceSpans", "resource_spans");
    if (resource_spans == nullptr) return batch;
    for (const auto& rs_value : *resource_spans) {
      const auto* rs = rs_value.if_object();
      if (rs == nullptr)
        return error(errc::malformed_request, "resourceSpans entry is not an object");
      attribute_list resource_attributes;
      if (const auto* res = object_member(*rs, "resource")) {
        OUTRIDER_TRY(attributes(*res, "attributes", "attributes", resource_attributes, 0));
      }
      const auto* scope_spans = array_member(*rs, "scopeSpans", "scope_spans");
      if (scope_spans == nullptr) scope_spans = array_member(*rs, "instrumentationLibrarySpans");
      if (scope_spans == nullptr) continue;
      for (const auto& ss_value : *scope_spans) {
        const auto* ss = ss_value.if_object();
        if (ss == nullptr)
          return error(errc::malformed_request, "scopeSpans entry is not an object");
        auto res = std::make_shared<span_resource>();
        res->attributes = resource_attributes;
        const auto* scope = object_member(*ss, "scope");
        if (scope == nullptr) scope = object_member(*ss, "instrumentationLibrary");
        if (scope != nullptr) {
          res->scope_name = string_member(*scope, "name");
          res->scope_version = string_member(*scope, "version");
        }
        std::shared_ptr<const span_resource> shared = std::move(res);
        const auto* spans = array_member(*ss, "spans");
        if (spans == nullptr) continue;
        for (const auto& sp : *spans) {
          const auto* obj = sp.if_object();
          if (obj == nullptr) return error(errc::malformed_request, "span is not an object");
          OUTRIDER_TRY(span_of(*obj, shared, batch));
        }
      }
    }
    return batch;
  }
};

result<json::value> parse_json(std::string_view body, json::monotonic_resource& mr) {
  json::parse_options opts;
  opts.max_depth = max_json_depth;
  opts.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, &mr, opts);
  if (ec) return error(errc::malformed_request, "body is not valid JSON: " + ec.message());
  return v;
}

// Zipkin ----------------------------------------------------------------------

status zipkin_endpoint(const json::value& v, endpoint& out, const std::string& where) {
  if (v.is_null()) return {};
  const auto* o = v.if_object();
  if (o == nullptr) return error(errc::malformed_request, where + " is not an object");
  out.service_name = string_member(*o, "serviceName");
  out.ipv4 = string_member(*o, "ipv4");
  out.ipv6 = string_member(*o, "ipv6");
  if (const auto* p = o->if_contains("port"); p != nullptr && !p->is_null()) {
    auto n = as_int64(*p);
    constexpr std::int64_t max_port = 65535;
    if (!n || *n < 0 || *n > max_port)
      return error(errc::malformed_request, where + ".port is not a port number");
    out.port = static_cast<std::uint16_t>(*n);
  }
  return {};
}

status zipkin_micros(const json::value* v, std::int64_t& out_ns, const std::string& what) {
  if (v == nullptr || v->is_null()) return {};
  auto n = as_int64(*v);
  constexpr std::int64_t max_micros = std::numeric_limits<std::int64_t>::max() / nanos_per_micro;
  if (!n || *n < 0 || *n > max_micros)
    return error(errc::malformed_request, what + " is not a count of microseconds");
  out_ns = *n * nanos_per_micro;
  return {};
}

status zipkin_span(const json::object& o, span& s, const std::string& where) {
  const auto* trace_id = o.if_contains("traceId");
  const auto* id = o.if_contains("id");
  if (trace_id == nullptr || !trace_id->is_string())
    return error(errc::malformed_request, where + ": traceId missing");
  if (id == nullptr || !id->is_string())
    return error(errc::malformed_request, where + ": id missing");
  auto t = parse_trace_id(trace_id->get_string());
  if (!t || t->is_zero()) {
    return error(errc::malformed_request,
                 where + ": traceId should be a 1 to 32 character lower-hex string with no prefix");
  }
  auto sid = parse_hex64(id->get_string());
  if (!sid || *sid == 0) {
    return error(errc::malformed_request,
                 where + ": id should be a 1 to 16 character lower-hex string with no prefix");
  }
  s.trace_id = *t;
  s.span_id = *sid;
  if (const auto* p = o.if_contains("parentId"); p != nullptr && !p->is_null()) {
    auto pid = p->is_string() ? parse_hex64(p->get_string()) : std::nullopt;
    if (!pid) {
      return error(
          errc::malformed_request,
          where + ": parentId should be a 1 to 16 character lower-hex string with no prefix");
    }
    s.parent_id = *pid;
  }
  s.name = string_member(o, "name");
  if (const auto* k = o.if_contains("kind"); k != nullptr && !k->is_null()) {
    const std::string_view kind =
        k->is_string() ? std::string_view(k->get_string()) : std::string_view{};
    if (kind == "CLIENT") {
      s.kind = span_kind::client;
    } else if (kind == "SERVER") {
      s.kind = span_kind::server;
    } else if (kind == "PRODUCER") {
      s.kind = span_kind::producer;
    } else if (kind == "CONSUMER") {
      s.kind = span_kind::consumer;
    } else {
      return error(errc::malformed_request,
                   where + ": kind must be CLIENT, SERVER, PRODUCER or CONSUMER");
    }
  }
  OUTRIDER_TRY(zipkin_micros(o.if_contains("timestamp"), s.start_ns, where + ".timestamp"));
  std::int64_t duration_ns = 0;
  OUTRIDER_TRY(zipkin_micros(o.if_contains("duration"), duration_ns, where + ".duration"));
  s.end_ns = s.start_ns > std::numeric_limits<std::int64_t>::max() - duration_ns
                 ? std::numeric_limits<std::int64_t>::max()
                 : s.start_ns + duration_ns;
  if (const auto* e = o.if_contains("localEndpoint")) {
    OUTRIDER_TRY(zipkin_endpoint(*e, s.local_endpoint, where + ".localEndpoint"));
  }
  if (const auto* e = o.if_contains("remoteEndpoint")) {
    OUTRIDER_TRY(zipkin_endpoint(*e, s.remote_endpoint, where + ".remoteEndpoint"));
  }
  if (const auto* a = o.if_contains("annotations"); a != nullptr && !a->is_null()) {
    const auto* list = a->if_array();
    if (list == nullptr)
      return error(errc::malformed_request, where + ".annotations is not an array");
    for (const auto& item : *list) {
      const auto* ann = item.if_object();
      if (ann == nullptr)
        return error(errc::malformed_request, where + ": annotation is not an object");
      span_event ev;
      OUTRIDER_TRY(zipkin_micros(ann->if_contains("timestamp"), ev.time_ns,
                                 where + ".annotations.timestamp"));
      const auto* value = ann->if_contains("value");
      if (value == nullptr || !value->is_string()) {
        return error(errc::malformed_request, where + ": annotation value missing");
      }
      ev.name = std::string(value->get_string());
      s.events.push_back(std::move(ev));
    }
  }
  if (const auto* tag_value = o.if_contains("tags");
      tag_value != nullptr && !tag_value->is_null()) {
    const auto* tags = tag_value->if_object();
    if (tags == nullptr) return error(errc::malformed_request, where + ".tags is not an object");
    for (const auto& kv : *tags) {
      std::string text;
      if (kv.value().is_string()) {
        text = std::string(kv.value().get_string());
      } else if (kv.value().is_bool()) {
        text = kv.value().get_bool() ? "true" : "false";
      } else if (kv.value().is_number()) {
        text = json::serialize(kv.value());
      } else {
        return error(errc::malformed_request,
                     where + ": tag " + std::string(kv.key()) + " has no string value");
      }
      s.attributes.push_back(
          key_value{std::string(kv.key()), attribute_value::of(std::move(text))});
    }
  }
  if (const auto* d = o.if_contains("debug"); d != nullptr && d->is_bool()) s.debug = d->get_bool();
  if (const auto* sh = o.if_contains("shared"); sh != nullptr && sh->is_bool())
    s.shared = sh->get_bool();
  return {};
}

}  // namespace

result<decoded_batch> decode_otlp_json(std::string_view body) {
  json::monotonic_resource mr;
  auto root = parse_json(body, mr);
  if (!root) return std::move(root).error();
  otlp_json_decoder d;
  return d.decode(*root);
}

result<decoded_batch> decode_zipkin_json(std::string_view body) {
  json::monotonic_resource mr;
  auto root = parse_json(body, mr);
  if (!root) return std::move(root).error();
  const auto* list = root->if_array();
  if (list == nullptr)
    return error(errc::malformed_request, "Zipkin v2 JSON body must be a list of spans");
  decoded_batch batch;
  batch.spans.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string where = "span " + std::to_string(i);
    const auto* o = (*list)[i].if_object();
    if (o == nullptr) return error(errc::malformed_request, where + " is not an object");
    span s;
    OUTRIDER_TRY(zipkin_span(*o, s, where));
    batch.spans.push_back(std::move(s));
  }
  return batch;
}

std::string encode_otlp_response_json(std::uint64_t rejected, std::string_view message) {
  if (rejected == 0 && message.empty()) return "{}";
  std::string out = "{\"partialSuccess\":{\"rejectedSpans\":\"" + std::to_string(rejected) +
                    "\",\"errorMessage\":";
  append_json_string(out, message);
  out += "}}";
  return out;
}

}  // namespace outrider::tracing
