#include "tracing/compact_trace.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <unordered_map>

#include "base/json_text.h"

namespace outrider::tracing {
namespace {

// Strings are written once, in first-use order; index 0 is "".
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class string_table {
 public:
  string_table() {
    ids_.emplace(std::string{}, 0);
    order_.push_back(&ids_.begin()->first);
  }

  std::size_t id(std::string_view text) {
    auto it = ids_.find(text);
    if (it != ids_.end()) return it->second;
    const std::size_t next = order_.size();
    auto inserted = ids_.emplace(std::string(text), next).first;
    order_.push_back(&inserted->first);
    return next;
  }

  void write(std::string& out) const {
    out += '[';
    for (std::size_t i = 0; i < order_.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, *order_[i]);
    }
    out += ']';
  }

 private:
  // Node-based map: the keys' addresses stay valid as it grows.
  std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> ids_;
  std::vector<const std::string*> order_;
};

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_index(std::string& out, std::size_t v) {
  append_number(out, static_cast<std::int64_t>(v));
}

// [key, value, key, value, ...] as string ids.
void append_attributes(std::string& out, string_table& strings, const attribute_list& attrs) {
  out += '[';
  bool first = true;
  for (const auto& kv : attrs) {
    if (!first) out += ',';
    first = false;
    append_index(out, strings.id(kv.key));
    out += ',';
    if (kv.value.kind == attribute_value::type::string) {
      append_index(out, strings.id(kv.value.string_value));
    } else {
      append_index(out, strings.id(kv.value.to_text()));
    }
  }
  out += ']';
}

std::string trace_hex(const id128& id) {
  return to_hex16(id.high) + to_hex16(id.low);
}

int status_number(status_code c) {
  switch (c) {
    case status_code::ok: return 1;
    case status_code::error: return 2;
    default: return 0;
  }
}

}  // namespace

void collect_incoming_links(const id128& trace_id, const std::vector<span>& other,
                            std::vector<incoming_link>& out) {
  for (const span& s : other) {
    if (s.trace_id == trace_id) continue;
    for (const span_link& l : s.links) {
      if (l.trace_id != trace_id) continue;
      out.push_back(incoming_link{s.trace_id, s.span_id, s.name, s.service_name(), l.span_id});
    }
  }
}

std::string encode_compact_trace(const id128& trace_id, const std::vector<span>& spans,
                                 const std::vector<incoming_link>& incoming) {
  std::int64_t base = 0;
  for (const span& s : spans) {
    if (s.start_ns > 0 && (base == 0 || s.start_ns < base)) base = s.start_ns;
  }
  auto relative = [base](std::int64_t t) { return t > 0 && t > base ? t - base : 0; };

  string_table strings;
  std::vector<const span_resource*> resources;
  std::unordered_map<const span_resource*, std::size_t> resource_ids;
  auto resource_id = [&](const span_resource* r) -> std::int64_t {
    if (r == nullptr) return -1;
    auto it = resource_ids.find(r);
    if (it != resource_ids.end()) return static_cast<std::int64_t>(it->second);
    // Spans stored in different batches hold equal resources in different objects.
    std::size_t id = resources.size();
    for (std::size_t i = 0; i < resources.size(); ++i) {
      if (*resources[i] == *r) {
        id = i;
        break;
      }
    }
    if (id == resources.size()) resources.push_back(r);
    resource_ids.emplace(r, id);
    return static_cast<std::int64_t>(id);
  };

  std::string body;
  body.reserve(spans.size() * 96);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const span& s = spans[i];
    if (i > 0) body += ',';
    // [spanId, parentSpanId, name, service, kind, start, duration, status, statusMessage,
    //  resource, remoteService, attributes, events, links]
    body += "[\"";
    body += to_hex16(s.span_id);
    body += "\",\"";
    if (s.parent_id != 0) body += to_hex16(s.parent_id);
    body += "\",";
    append_index(body, strings.id(s.name));
    body += ',';
    append_index(body, strings.id(s.service_name()));
    body += ',';
    append_number(body, static_cast<std::int64_t>(s.kind));
    body += ',';
    const std::int64_t start = relative(s.start_ns);
    append_number(body, start);
    body += ',';
    append_number(body, s.duration_ns());
    body += ',';
    append_number(body, status_number(s.status.code));
    body += ',';
    append_index(body, strings.id(s.status.message));
    body += ',';
    append_number(body, resource_id(s.resource.get()));
    body += ',';
    append_index(body, strings.id(s.remote_endpoint.service_name));
    body += ',';
    append_attributes(body, strings, s.attributes);
    body += ",[";
    for (std::size_t e = 0; e < s.events.size(); ++e) {
      if (e > 0) body += ',';
      append_number(body, relative(s.events[e].time_ns));
      body += ',';
      append_index(body, strings.id(s.events[e].name));
      body += ',';
      append_attributes(body, strings, s.events[e].attributes);
    }
    body += "],[";
    for (std::size_t l = 0; l < s.links.size(); ++l) {
      if (l > 0) body += ',';
      append_index(body, strings.id(trace_hex(s.links[l].trace_id)));
      body += ",\"";
      body += to_hex16(s.links[l].span_id);
      body += "\",";
      append_attributes(body, strings, s.links[l].attributes);
    }
    body += "]]";
  }

  std::string linked;
  for (std::size_t i = 0; i < incoming.size(); ++i) {
    const incoming_link& l = incoming[i];
    if (i > 0) linked += ',';
    // [traceId, spanId, name, service, targetSpanId]
    linked += '[';
    append_index(linked, strings.id(trace_hex(l.trace_id)));
    linked += ",\"";
    linked += to_hex16(l.span_id);
    linked += "\",";
    append_index(linked, strings.id(l.name));
    linked += ',';
    append_index(linked, strings.id(l.service));
    linked += ",\"";
    linked += to_hex16(l.target_span_id);
    linked += "\"]";
  }

  std::string res;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    if (i > 0) res += ',';
    // [attributes, scopeName, scopeVersion]
    res += '[';
    append_attributes(res, strings, resources[i]->attributes);
    res += ',';
    append_index(res, strings.id(resources[i]->scope_name));
    res += ',';
    append_index(res, strings.id(resources[i]->scope_version));
    res += ']';
  }

  std::string out;
  out.reserve(body.size() + linked.size() + res.size() + 4096);
  out += "{\"format\":\"compact-1\",\"traceId\":\"";
  out += trace_hex(trace_id);
  out += "\",\"base\":\"";
  append_number(out, base);
  out += "\",\"strings\":";
  strings.write(out);
  out += ",\"resources\":[";
  out += res;
  out += "],\"spans\":[";
  out += body;
  out += "],\"linkedFrom\":[";
  out += linked;
  out += "]}";
  return out;
}

}  // namespace outrider::tracing
