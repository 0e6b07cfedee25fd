#include "tracing/detail/span_record.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "tracing/codec.h"
#include "tracing/detail/byte_codec.h"
#include "tracing/span_store_format.h"

namespace outrider::tracing::detail {
namespace {

namespace fmt_ = span_store_format;

class writer : public byte_writer {
 public:
  using byte_writer::byte_writer;

  void value(const attribute_value& v) {
    using t = attribute_value::type;
    switch (v.kind) {
      case t::empty: u8(fmt_::value_empty); break;
      case t::string:
        u8(fmt_::value_string);
        text(v.string_value);
        break;
      case t::boolean:
        u8(fmt_::value_bool);
        u8(v.bool_value ? 1 : 0);
        break;
      case t::int64:
        u8(fmt_::value_int);
        zigzag(v.int_value);
        break;
      case t::float64:
        u8(fmt_::value_double);
        fixed64(std::bit_cast<std::uint64_t>(v.double_value));
        break;
      case t::array:
        u8(fmt_::value_array);
        varint(v.array.size());
        for (const auto& e : v.array) value(e);
        break;
      case t::kvlist:
        u8(fmt_::value_kvlist);
        attributes(v.kvlist);
        break;
      case t::bytes:
        u8(fmt_::value_bytes);
        text(v.string_value);
        break;
    }
  }
  void attributes(const attribute_list& list) {
    varint(list.size());
    for (const auto& kv : list) {
      text(kv.key);
      value(kv.value);
    }
  }
  void endpoint_of(const endpoint& e) {
    text(e.service_name);
    text(e.ipv4);
    text(e.ipv6);
    varint(e.port);
  }
};

class reader : public byte_reader {
 public:
  using byte_reader::byte_reader;

  void value(attribute_value& v, int depth) {
    if (depth > max_attribute_depth) {
      failed_ = true;
      return;
    }
    switch (u8()) {
      case fmt_::value_empty: v.kind = attribute_value::type::empty; break;
      case fmt_::value_string:
        v.kind = attribute_value::type::string;
        v.string_value = text();
        break;
      case fmt_::value_bool:
        v.kind = attribute_value::type::boolean;
        v.bool_value = u8() != 0;
        break;
      case fmt_::value_int:
        v.kind = attribute_value::type::int64;
        v.int_value = zigzag();
        break;
      case fmt_::value_double:
        v.kind = attribute_value::type::float64;
        v.double_value = std::bit_cast<double>(fixed64());
        break;
      case fmt_::value_array: {
        v.kind = attribute_value::type::array;
        const std::size_t n = count();
        v.array.resize(n);
        for (std::size_t i = 0; i < n && !failed_; ++i) value(v.array[i], depth + 1);
        break;
      }
      case fmt_::value_kvlist:
        v.kind = attribute_value::type::kvlist;
        attributes(v.kvlist, depth + 1);
        break;
      case fmt_::value_bytes:
        v.kind = attribute_value::type::bytes;
        v.string_value = text();
        break;
      default: failed_ = true;
    }
  }
  void attributes(attribute_list& list, int depth = 0) {
    const std::size_t n = count();
    list.resize(n);
    for (std::size_t i = 0; i < n && !failed_; ++i) {
      list[i].key = text();
      value(list[i].value, depth);
    }
  }
  void endpoint_of(endpoint& e) {
    e.service_name = text();
    e.ipv4 = text();
    e.ipv6 = text();
    const std::uint64_t port = varint();
    constexpr std::uint64_t max_port = 65535;
    if (port > max_port) failed_ = true;
    e.port = static_cast<std::uint16_t>(port);
  }
};

}  // namespace

void encode_span_record(std::string& out, std::int64_t ingest_ms, const id128& trace_id,
                        std::span<const span* const> spans) {
  writer w(out);
  w.u8(fmt_::version);
  w.zigzag(ingest_ms);
  w.fixed64(trace_id.high);
  w.fixed64(trace_id.low);
  // Resources once per record, referenced by index (+1; 0 = none).
  std::vector<const span_resource*> resources;
  std::unordered_map<const span_resource*, std::uint64_t> resource_index;
  for (const span* s : spans) {
    if (s->resource != nullptr &&
        resource_index.emplace(s->resource.get(), resources.size() + 1).second) {
      resources.push_back(s->resource.get());
    }
  }
  w.varint(resources.size());
  for (const auto* r : resources) {
    w.attributes(r->attributes);
    w.text(r->scope_name);
    w.text(r->scope_version);
  }
  w.varint(spans.size());
  for (const span* s : spans) {
    w.varint(s->resource != nullptr ? resource_index[s->resource.get()] : 0);
    w.fixed64(s->span_id);
    w.fixed64(s->parent_id);
    w.text(s->name);
    w.u8(static_cast<std::uint8_t>(s->kind));
    w.zigzag(s->start_ns);
    w.zigzag(s->end_ns - s->start_ns);
    w.text(s->trace_state);
    w.varint(s->flags);
    w.u8(static_cast<std::uint8_t>((s->debug ? fmt_::flag_debug : 0) |
                                   (s->shared ? fmt_::flag_shared : 0)));
    w.endpoint_of(s->local_endpoint);
    w.endpoint_of(s->remote_endpoint);
    w.attributes(s->attributes);
    w.varint(s->events.size());
    for (const auto& e : s->events) {
      w.zigzag(e.time_ns);
      w.text(e.name);
      w.attributes(e.attributes);
    }
    w.varint(s->links.size());
    for (const auto& l : s->links) {
      w.fixed64(l.trace_id.high);
      w.fixed64(l.trace_id.low);
      w.fixed64(l.span_id);
      w.text(l.trace_state);
      w.attributes(l.attributes);
    }
    w.u8(static_cast<std::uint8_t>(s->status.code));
    w.text(s->status.message);
    w.varint(s->dropped_attributes);
    w.varint(s->dropped_events);
    w.varint(s->dropped_links);
  }
}

result<span_record> decode_span_record(std::span<const std::byte> payload) {
  reader r(payload);
  if (r.u8() != fmt_::version) return error(errc::data_corruption, "span record: unknown version");
  span_record rec;
  rec.ingest_ms = r.zigzag();
  rec.trace_id.high = r.fixed64();
  rec.trace_id.low = r.fixed64();
  std::vector<std::shared_ptr<const span_resource>> resources(r.count());
  for (auto& res : resources) {
    auto made = std::make_shared<span_resource>();
    r.attributes(made->attributes);
    made->scope_name = r.text();
    made->scope_version = r.text();
    res = std::move(made);
  }
  const std::size_t n = r.count();
  rec.spans.resize(n);
  constexpr auto max_kind = static_cast<std::uint8_t>(span_kind::consumer);
  constexpr auto max_status = static_cast<std::uint8_t>(status_code::error);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) {
    span& s = rec.spans[i];
    s.trace_id = rec.trace_id;
    const std::uint64_t res = r.varint();
    if (res > resources.size())
      return error(errc::data_corruption, "span record: bad resource index");
    if (res > 0) s.resource = resources[res - 1];
    s.span_id = r.fixed64();
    s.parent_id = r.fixed64();
    s.name = r.text();
    const std::uint8_t kind = r.u8();
    if (kind > max_kind) return error(errc::data_corruption, "span record: bad kind");
    s.kind = static_cast<span_kind>(kind);
    s.start_ns = r.zigzag();
    // Wrapping add: corrupt input must not be undefined behaviour.
    s.end_ns = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.start_ns) +
                                         static_cast<std::uint64_t>(r.zigzag()));
    s.trace_state = r.text();
    s.flags = static_cast<std::uint32_t>(r.varint());
    const std::uint8_t bits = r.u8();
    s.debug = (bits & fmt_::flag_debug) != 0;
    s.shared = (bits & fmt_::flag_shared) != 0;
    r.endpoint_of(s.local_endpoint);
    r.endpoint_of(s.remote_endpoint);
    r.attributes(s.attributes);
    s.events.resize(r.count());
    for (auto& e : s.events) {
      e.time_ns = r.zigzag();
      e.name = r.text();
      r.attributes(e.attributes);
    }
    s.links.resize(r.count());
    for (auto& l : s.links) {
      l.trace_id.high = r.fixed64();
      l.trace_id.low = r.fixed64();
      l.span_id = r.fixed64();
      l.trace_state = r.text();
      r.attributes(l.attributes);
    }
    const std::uint8_t code = r.u8();
    if (code > max_status) return error(errc::data_corruption, "span record: bad status");
    s.status.code = static_cast<status_code>(code);
    s.status.message = r.text();
    s.dropped_attributes = static_cast<std::uint32_t>(r.varint());
    s.dropped_events = static_cast<std::uint32_t>(r.varint());
    s.dropped_links = static_cast<std::uint32_t>(r.varint());
  }
  if (r.failed() || !r.at_end())
    return error(errc::data_corruption, "span record: malformed payload");
  return rec;
}

}  // namespace outrider::tracing::detail
