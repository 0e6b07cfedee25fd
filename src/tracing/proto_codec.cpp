// Protobuf bodies: OTLP ExportTraceServiceRequest/Response and Zipkin's
// ListOfSpans. The only file of the library that includes generated code.
#include <arpa/inet.h>

#include <algorithm>
#include <climits>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tracing/codec.h"
#include "tracing/detail/otlp_mapping.h"
#include "zipkin/zipkin.pb.h"

namespace outrider::tracing {
namespace {

namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

constexpr std::size_t ipv4_bytes = 4;
constexpr std::size_t ipv6_bytes = 16;
constexpr std::size_t otlp_trace_id_bytes = 16;
constexpr std::size_t otlp_span_id_bytes = 8;
constexpr std::int64_t nanos_per_micro = 1000;

bool convert_value(const otlp_common::AnyValue& in, attribute_value& out, int depth);

bool convert_attributes(const google::protobuf::RepeatedPtrField<otlp_common::KeyValue>& in,
                        attribute_list& out, int depth) {
  out.reserve(out.size() + static_cast<std::size_t>(in.size()));
  for (const auto& kv : in) {
    key_value item;
    item.key = kv.key();
    if (kv.has_value() && !convert_value(kv.value(), item.value, depth)) return false;
    out.push_back(std::move(item));
  }
  return true;
}

bool convert_value(const otlp_common::AnyValue& in, attribute_value& out, int depth) {
  if (depth > max_attribute_depth) return false;
  using v = otlp_common::AnyValue;
  switch (in.value_case()) {
    case v::kStringValue:
      out.kind = attribute_value::type::string;
      out.string_value = in.string_value();
      return true;
    case v::kBoolValue:
      out.kind = attribute_value::type::boolean;
      out.bool_value = in.bool_value();
      return true;
    case v::kIntValue:
      out.kind = attribute_value::type::int64;
      out.int_value = in.int_value();
      return true;
    case v::kDoubleValue:
      out.kind = attribute_value::type::float64;
      out.double_value = in.double_value();
      return true;
    case v::kBytesValue:
      out.kind = attribute_value::type::bytes;
      out.string_value = in.bytes_value();
      return true;
    case v::kArrayValue:
      out.kind = attribute_value::type::array;
      out.array.reserve(static_cast<std::size_t>(in.array_value().values_size()));
      for (const auto& item : in.array_value().values()) {
        attribute_value element;
        if (!convert_value(item, element, depth + 1)) return false;
        out.array.push_back(std::move(element));
      }
      return true;
    case v::kKvlistValue:
      out.kind = attribute_value::type::kvlist;
      return convert_attributes(in.kvlist_value().values(), out.kvlist, depth + 1);
    case v::VALUE_NOT_SET: out.kind = attribute_value::type::empty; return true;
  }
  return true;
}

span_kind convert_kind(int k) {
  switch (k) {
    case otlp_trace::Span::SPAN_KIND_INTERNAL: return span_kind::internal;
    case otlp_trace::Span::SPAN_KIND_SERVER: return span_kind::server;
    case otlp_trace::Span::SPAN_KIND_CLIENT: return span_kind::client;
    case otlp_trace::Span::SPAN_KIND_PRODUCER: return span_kind::producer;
    case otlp_trace::Span::SPAN_KIND_CONSUMER: return span_kind::consumer;
    default: return span_kind::unspecified;
  }
}

status_code convert_status(int c) {
  switch (c) {
    case otlp_trace::Status::STATUS_CODE_OK: return status_code::ok;
    case otlp_trace::Status::STATUS_CODE_ERROR: return status_code::error;
    default: return status_code::unset;
  }
}

std::int64_t to_signed_ns(std::uint64_t ns) {
  return ns > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(ns);
}

const error depth_error(errc::malformed_request, "attribute values nested deeper than the limit");

}  // namespace

// The collector's parse tree lives on an arena whose first block is reused per
// thread: without it, allocating and freeing the tree's messages and strings
// was about a third of the collector's CPU at full ingest (perf, 512-span batches).
constexpr std::size_t decode_arena_block = std::size_t{2} << 20;

result<decoded_batch> decode_otlp_protobuf(std::string_view body) {
  if (body.size() > INT_MAX) return error(errc::body_too_large, "OTLP body too large");
  thread_local std::vector<char> first_block(decode_arena_block);
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = first_block.data();
  arena_options.initial_block_size = first_block.size();
  google::protobuf::Arena arena(arena_options);
  auto& req =
      *google::protobuf::Arena::CreateMessage<otlp_collector::ExportTraceServiceRequest>(&arena);
  if (!req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return error(errc::malformed_request,
                 "body is not a valid OTLP ExportTraceServiceRequest protobuf");
  }
  decoded_batch batch;
  for (const auto& rs : req.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      auto res = std::make_shared<span_resource>();
      if (!convert_attributes(rs.resource().attributes(), res->attributes, 0)) return depth_error;
      res->scope_name = ss.scope().name();
      res->scope_version = ss.scope().version();
      std::shared_ptr<const span_resource> shared = std::move(res);
      for (const auto& in : ss.spans()) {
        span s;
        auto trace_id = in.trace_id().size() == otlp_trace_id_bytes
                            ? trace_id_from_bytes(in.trace_id())
                            : std::nullopt;
        auto span_id = span_id_from_bytes(in.span_id());
        bool valid = trace_id.has_value() && span_id.has_value();
        if (valid) {
          s.trace_id = *trace_id;
          s.span_id = *span_id;
        }
        if (!in.parent_span_id().empty()) {
          auto parent = span_id_from_bytes(in.parent_span_id());
          if (!parent) valid = false;
          s.parent_id = parent.value_or(0);
        }
        s.name = in.name();
        s.kind = convert_kind(in.kind());
        s.start_ns = to_signed_ns(in.start_time_unix_nano());
        s.end_ns = to_signed_ns(in.end_time_unix_nano());
        s.trace_state = in.trace_state();
        s.flags = in.flags();
        if (!convert_attributes(in.attributes(), s.attributes, 0)) return depth_error;
        s.dropped_attributes = in.dropped_attributes_count();
        s.events.reserve(static_cast<std::size_t>(in.events_size()));
        for (const auto& ev : in.events()) {
          span_event e;
          e.time_ns = to_signed_ns(ev.time_unix_nano());
          e.name = ev.name();
          if (!convert_attributes(ev.attributes(), e.attributes, 0)) return depth_error;
          s.events.push_back(std::move(e));
        }
        s.dropped_events = in.dropped_events_count();
        for (const auto& ln : in.links()) {
          span_link l;
          auto lt = ln.trace_id().size() == otlp_trace_id_bytes ? trace_id_from_bytes(ln.trace_id())
                                                                : std::nullopt;
          auto ls = span_id_from_bytes(ln.span_id());
          if (!lt || !ls) continue;  // a link to nothing identifiable says nothing
          l.trace_id = *lt;
          l.span_id = *ls;
          l.trace_state = ln.trace_state();
          if (!convert_attributes(ln.attributes(), l.attributes, 0)) return depth_error;
          s.links.push_back(std::move(l));
        }
        s.dropped_links = in.dropped_links_count();
        s.status.code = convert_status(in.status().code());
        s.status.message = in.status().message();
        s.resource = shared;
        detail::accept_otlp_span(batch, std::move(s), valid);
      }
    }
  }
  return batch;
}

std::string encode_otlp_response_protobuf(std::uint64_t rejected, std::string_view message) {
  otlp_collector::ExportTraceServiceResponse resp;
  if (rejected > 0 || !message.empty()) {
    auto* partial = resp.mutable_partial_success();
    partial->set_rejected_spans(static_cast<std::int64_t>(rejected));
    partial->set_error_message(std::string(message));
  }
  return resp.SerializeAsString();
}

namespace {

void to_any_value(const attribute_value& in, otlp_common::AnyValue& out);

void to_attributes(const attribute_list& in,
                   google::protobuf::RepeatedPtrField<otlp_common::KeyValue>& out) {
  out.Reserve(static_cast<int>(in.size()));
  for (const auto& kv : in) {
    auto* item = out.Add();
    item->set_key(kv.key);
    to_any_value(kv.value, *item->mutable_value());
  }
}

void to_any_value(const attribute_value& in, otlp_common::AnyValue& out) {
  using t = attribute_value::type;
  switch (in.kind) {
    case t::empty: return;
    case t::string: out.set_string_value(in.string_value); return;
    case t::boolean: out.set_bool_value(in.bool_value); return;
    case t::int64: out.set_int_value(in.int_value); return;
    case t::float64: out.set_double_value(in.double_value); return;
    case t::bytes: out.set_bytes_value(in.string_value); return;
    case t::array:
      for (const auto& item : in.array)
        to_any_value(item, *out.mutable_array_value()->add_values());
      return;
    case t::kvlist: to_attributes(in.kvlist, *out.mutable_kvlist_value()->mutable_values()); return;
  }
}

std::string id_bytes(std::uint64_t v) {
  std::string out(otlp_span_id_bytes, '\0');
  for (std::size_t i = 0; i < otlp_span_id_bytes; ++i) {
    out[otlp_span_id_bytes - 1 - i] = static_cast<char>(v & 0xff);
    v >>= CHAR_BIT;
  }
  return out;
}

int otlp_kind(span_kind k) {
  switch (k) {
    case span_kind::internal: return otlp_trace::Span::SPAN_KIND_INTERNAL;
    case span_kind::server: return otlp_trace::Span::SPAN_KIND_SERVER;
    case span_kind::client: return otlp_trace::Span::SPAN_KIND_CLIENT;
    case span_kind::producer: return otlp_trace::Span::SPAN_KIND_PRODUCER;
    case span_kind::consumer: return otlp_trace::Span::SPAN_KIND_CONSUMER;
    case span_kind::unspecified: break;
  }
  return otlp_trace::Span::SPAN_KIND_UNSPECIFIED;
}

int otlp_status(status_code c) {
  switch (c) {
    case status_code::ok: return otlp_trace::Status::STATUS_CODE_OK;
    case status_code::error: return otlp_trace::Status::STATUS_CODE_ERROR;
    case status_code::unset: break;
  }
  return otlp_trace::Status::STATUS_CODE_UNSET;
}

}  // namespace

namespace {
// Exporters encode on one thread, batch after batch: the message tree goes on
// an arena whose first block is reused, so a batch costs no heap allocations
// once warm (malloc and page faults were most of the encoding cost).
constexpr std::size_t encode_arena_block = 1 << 20;
}  // namespace

std::string encode_otlp_protobuf(const std::vector<span>& spans) {
  thread_local std::vector<char> first_block(encode_arena_block);
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = first_block.data();
  arena_options.initial_block_size = first_block.size();
  google::protobuf::Arena arena(arena_options);
  auto& req =
      *google::protobuf::Arena::CreateMessage<otlp_collector::ExportTraceServiceRequest>(&arena);
  detail::for_each_resource_group(
      spans, [&](const span_resource& res, const std::vector<const span*>& group) {
        auto* rs = req.add_resource_spans();
        to_attributes(res.attributes, *rs->mutable_resource()->mutable_attributes());
        auto* ss = rs->add_scope_spans();
        ss->mutable_scope()->set_name(res.scope_name);
        ss->mutable_scope()->set_version(res.scope_version);
        ss->mutable_spans()->Reserve(static_cast<int>(group.size()));
        for (const span* s : group) {
          auto* out = ss->add_spans();
          out->set_trace_id(id_bytes(s->trace_id.high) + id_bytes(s->trace_id.low));
          out->set_span_id(id_bytes(s->span_id));
          if (s->parent_id != 0) out->set_parent_span_id(id_bytes(s->parent_id));
          if (!s->trace_state.empty()) out->set_trace_state(s->trace_state);
          out->set_flags(s->flags);
          out->set_name(s->name);
          out->set_kind(static_cast<otlp_trace::Span::SpanKind>(otlp_kind(s->kind)));
          out->set_start_time_unix_nano(static_cast<std::uint64_t>(s->start_ns));
          out->set_end_time_unix_nano(static_cast<std::uint64_t>(s->end_ns));
          to_attributes(s->attributes, *out->mutable_attributes());
          out->set_dropped_attributes_count(s->dropped_attributes);
          for (const auto& e : s->events) {
            auto* ev = out->add_events();
            ev->set_time_unix_nano(static_cast<std::uint64_t>(e.time_ns));
            ev->set_name(e.name);
            to_attributes(e.attributes, *ev->mutable_attributes());
          }
          out->set_dropped_events_count(s->dropped_events);
          for (const auto& l : s->links) {
            auto* ln = out->add_links();
            ln->set_trace_id(id_bytes(l.trace_id.high) + id_bytes(l.trace_id.low));
            ln->set_span_id(id_bytes(l.span_id));
            if (!l.trace_state.empty()) ln->set_trace_state(l.trace_state);
            to_attributes(l.attributes, *ln->mutable_attributes());
          }
          out->set_dropped_links_count(s->dropped_links);
          if (s->status.code != status_code::unset || !s->status.message.empty()) {
            out->mutable_status()->set_code(
                static_cast<otlp_trace::Status::StatusCode>(otlp_status(s->status.code)));
            out->mutable_status()->set_message(s->status.message);
          }
        }
      });
  return req.SerializeAsString();
}

namespace {

bool convert_endpoint(const zipkin::proto3::Endpoint& in, endpoint& out) {
  out.service_name = in.service_name();
  char text[INET6_ADDRSTRLEN];
  if (!in.ipv4().empty()) {
    if (in.ipv4().size() != ipv4_bytes ||
        inet_ntop(AF_INET, in.ipv4().data(), text, sizeof text) == nullptr) {
      return false;
    }
    out.ipv4 = text;
  }
  if (!in.ipv6().empty()) {
    if (in.ipv6().size() != ipv6_bytes ||
        inet_ntop(AF_INET6, in.ipv6().data(), text, sizeof text) == nullptr) {
      return false;
    }
    out.ipv6 = text;
  }
  constexpr std::int32_t max_port = 65535;
  if (in.port() < 0 || in.port() > max_port) return false;
  out.port = static_cast<std::uint16_t>(in.port());
  return true;
}

}  // namespace

result<decoded_batch> decode_zipkin_proto(std::string_view body) {
  if (body.size() > INT_MAX) return error(errc::body_too_large, "Zipkin body too large");
  zipkin::proto3::ListOfSpans list;
  if (!list.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return error(errc::malformed_request, "body is not a valid Zipkin ListOfSpans protobuf");
  }
  decoded_batch batch;
  batch.spans.reserve(static_cast<std::size_t>(list.spans_size()));
  int index = 0;
  for (const auto& in : list.spans()) {
    const std::string where = "span " + std::to_string(index++) + ": ";
    span s;
    auto trace_id = trace_id_from_bytes(in.trace_id());
    if (!trace_id || trace_id->is_zero())
      return error(errc::malformed_request, where + "trace_id must be 8 or 16 bytes, not all zero");
    auto id = span_id_from_bytes(in.id());
    if (!id || *id == 0)
      return error(errc::malformed_request, where + "id must be 8 bytes, not zero");
    s.trace_id = *trace_id;
    s.span_id = *id;
    if (!in.parent_id().empty()) {
      auto parent = span_id_from_bytes(in.parent_id());
      if (!parent) return error(errc::malformed_request, where + "parent_id must be 8 bytes");
      s.parent_id = *parent;
    }
    switch (in.kind()) {
      case zipkin::proto3::Span::CLIENT: s.kind = span_kind::client; break;
      case zipkin::proto3::Span::SERVER: s.kind = span_kind::server; break;
      case zipkin::proto3::Span::PRODUCER: s.kind = span_kind::producer; break;
      case zipkin::proto3::Span::CONSUMER: s.kind = span_kind::consumer; break;
      default: break;
    }
    s.name = in.name();
    constexpr std::uint64_t max_micros = static_cast<std::uint64_t>(INT64_MAX / nanos_per_micro);
    if (in.timestamp() > max_micros || in.duration() > max_micros) {
      return error(errc::malformed_request, where + "timestamp or duration out of range");
    }
    s.start_ns = static_cast<std::int64_t>(in.timestamp()) * nanos_per_micro;
    const auto duration_ns = static_cast<std::int64_t>(in.duration()) * nanos_per_micro;
    s.end_ns = s.start_ns > INT64_MAX - duration_ns ? INT64_MAX : s.start_ns + duration_ns;
    if (in.has_local_endpoint() && !convert_endpoint(in.local_endpoint(), s.local_endpoint)) {
      return error(errc::malformed_request, where + "bad localEndpoint");
    }
    if (in.has_remote_endpoint() && !convert_endpoint(in.remote_endpoint(), s.remote_endpoint)) {
      return error(errc::malformed_request, where + "bad remoteEndpoint");
    }
    for (const auto& a : in.annotations()) {
      if (a.timestamp() > max_micros)
        return error(errc::malformed_request, where + "annotation timestamp out of range");
      s.events.push_back(
          span_event{static_cast<std::int64_t>(a.timestamp()) * nanos_per_micro, a.value(), {}});
    }
    // proto3 maps have no order; sort the tags so that equal spans encode equally.
    for (const auto& [k, v] : in.tags())
      s.attributes.push_back(key_value{k, attribute_value::of(v)});
    std::sort(s.attributes.begin(), s.attributes.end(),
              [](const key_value& a, const key_value& b) { return a.key < b.key; });
    s.debug = in.debug();
    s.shared = in.shared();
    batch.spans.push_back(std::move(s));
  }
  return batch;
}

}  // namespace outrider::tracing
