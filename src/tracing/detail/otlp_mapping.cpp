#include "tracing/detail/otlp_mapping.h"

namespace outrider::tracing::detail {
namespace {

const attribute_value* find(const attribute_list& attrs, std::string_view key) {
  for (const auto& kv : attrs) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

std::string text_of(const attribute_value* v) {
  if (v == nullptr) return {};
  return v->to_text();
}

}  // namespace

void finish_otlp_span(span& s) {
  if (s.resource != nullptr) {
    if (const auto* v = find(s.resource->attributes, "service.name");
        v != nullptr && v->kind == attribute_value::type::string && !v->string_value.empty()) {
      s.local_endpoint.service_name = v->string_value;
    }
  }
  if (s.local_endpoint.service_name.empty()) s.local_endpoint.service_name = unknown_service;
  if (s.kind != span_kind::client && s.kind != span_kind::producer) return;
  std::string remote = text_of(find(s.attributes, "peer.service"));
  if (remote.empty()) remote = text_of(find(s.attributes, "server.address"));
  if (remote.empty()) remote = text_of(find(s.attributes, "net.peer.name"));
  if (remote.empty()) remote = text_of(find(s.attributes, "messaging.system"));
  s.remote_endpoint.service_name = std::move(remote);
  const attribute_value* port = find(s.attributes, "server.port");
  if (port == nullptr) port = find(s.attributes, "net.peer.port");
  constexpr std::int64_t max_port = 65535;
  if (port != nullptr && port->kind == attribute_value::type::int64 && port->int_value > 0 &&
      port->int_value <= max_port) {
    s.remote_endpoint.port = static_cast<std::uint16_t>(port->int_value);
  }
}

void accept_otlp_span(decoded_batch& batch, span&& s, bool has_valid_ids) {
  const char* why = nullptr;
  if (!has_valid_ids) {
    why = "trace_id must be 16 bytes and span_id 8 bytes";
  } else if (s.trace_id.is_zero()) {
    why = "trace_id is all zero";
  } else if (s.span_id == 0) {
    why = "span_id is all zero";
  }
  if (why != nullptr) {
    if (batch.rejected == 0) batch.rejection_message = why;
    ++batch.rejected;
    return;
  }
  if (s.end_ns < s.start_ns) s.end_ns = s.start_ns;
  finish_otlp_span(s);
  batch.spans.push_back(std::move(s));
}

void for_each_resource_group(
    const std::vector<span>& spans,
    const std::function<void(const span_resource&, const std::vector<const span*>&)>& fn) {
  struct group {
    const span_resource* resource = nullptr;  // null: keyed by service name
    std::string service;
    std::vector<const span*> members;
  };
  std::vector<group> groups;  // few groups per batch: linear search is fine
  for (const auto& s : spans) {
    group* g = nullptr;
    for (auto& candidate : groups) {
      const bool same =
          s.resource ? candidate.resource == s.resource.get()
                     : candidate.resource == nullptr && candidate.service == s.service_name();
      if (same) {
        g = &candidate;
        break;
      }
    }
    if (g == nullptr) {
      groups.push_back({s.resource.get(), s.resource ? std::string() : s.service_name(), {}});
      g = &groups.back();
    }
    g->members.push_back(&s);
  }
  for (const auto& g : groups) {
    if (g.resource != nullptr) {
      fn(*g.resource, g.members);
    } else {
      span_resource r;
      r.attributes.push_back(
          {"service.name",
           attribute_value::of(g.service.empty() ? std::string(unknown_service) : g.service)});
      fn(r, g.members);
    }
  }
}

}  // namespace outrider::tracing::detail
