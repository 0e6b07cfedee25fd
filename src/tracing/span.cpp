#include "tracing/span.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/json_text.h"

namespace outrider::tracing {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr std::size_t span_id_bytes = 8;
constexpr std::size_t trace_id_bytes = 16;

void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                   std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) n |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
}

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  if (ec == std::errc()) out.append(buf, end);
}

void append_json_value(std::string& out, const attribute_value& v) {
  switch (v.kind) {
    case attribute_value::type::string: append_json_string(out, v.string_value); break;
    case attribute_value::type::bytes: {
      std::string b64;
      append_base64(b64, v.string_value);
      append_json_string(out, b64);
      break;
    }
    case attribute_value::type::empty: out += "null"; break;
    default: out += v.to_text();
  }
}

}  // namespace

std::string attribute_value::to_text() const {
  std::string out;
  switch (kind) {
    case type::empty: break;
    case type::string: out = string_value; break;
    case type::boolean: out = bool_value ? "true" : "false"; break;
    case type::int64: out = std::to_string(int_value); break;
    case type::float64: append_double(out, double_value); break;
    case type::bytes: append_base64(out, string_value); break;
    case type::array:
      out += '[';
      for (std::size_t i = 0; i < array.size(); ++i) {
        if (i > 0) out += ',';
        append_json_value(out, array[i]);
      }
      out += ']';
      break;
    case type::kvlist:
      out += '{';
      for (std::size_t i = 0; i < kvlist.size(); ++i) {
        if (i > 0) out += ',';
        append_json_string(out, kvlist[i].key);
        out += ':';
        append_json_value(out, kvlist[i].value);
      }
      out += '}';
      break;
  }
  return out;
}

bool attribute_value::operator==(const attribute_value& o) const {
  if (kind != o.kind) return false;
  switch (kind) {
    case type::empty: return true;
    case type::string:
    case type::bytes: return string_value == o.string_value;
    case type::boolean: return bool_value == o.bool_value;
    case type::int64: return int_value == o.int_value;
    case type::float64:
      return double_value == o.double_value ||
             (std::isnan(double_value) && std::isnan(o.double_value));
    case type::array: return array == o.array;
    case type::kvlist: return kvlist == o.kvlist;
  }
  return false;
}

const attribute_value* span::attribute(std::string_view key) const noexcept {
  for (const auto& kv : attributes) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

bool span::same_as(const span& o) const {
  const bool resources_equal =
      (resource == nullptr && o.resource == nullptr) ||
      (resource != nullptr && o.resource != nullptr && *resource == *o.resource);
  return trace_id == o.trace_id && span_id == o.span_id && parent_id == o.parent_id &&
         name == o.name && kind == o.kind && start_ns == o.start_ns && end_ns == o.end_ns &&
         trace_state == o.trace_state && flags == o.flags && debug == o.debug &&
         shared == o.shared && local_endpoint == o.local_endpoint &&
         remote_endpoint == o.remote_endpoint && attributes == o.attributes && events == o.events &&
         links == o.links && status == o.status && resources_equal &&
         dropped_attributes == o.dropped_attributes && dropped_events == o.dropped_events &&
         dropped_links == o.dropped_links;
}

std::string_view to_string(span_kind k) noexcept {
  switch (k) {
    case span_kind::server: return "SERVER";
    case span_kind::client: return "CLIENT";
    case span_kind::producer: return "PRODUCER";
    case span_kind::consumer: return "CONSUMER";
    case span_kind::internal:
    case span_kind::unspecified: return "";
  }
  return "";
}

std::string_view to_string(status_code c) noexcept {
  switch (c) {
    case status_code::ok: return "OK";
    case status_code::error: return "ERROR";
    case status_code::unset: return "UNSET";
  }
  return "UNSET";
}

std::string to_hex16(std::uint64_t id) {
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = hex_digits[id & 0xf];
    id >>= 4;
  }
  return out;
}

std::string trace_id_hex(const id128& id) {
  if (id.high == 0) return to_hex16(id.low);
  return to_hex16(id.high) + to_hex16(id.low);
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) noexcept {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::optional<id128> parse_trace_id(std::string_view text) noexcept {
  if (text.empty() || text.size() > 32) return std::nullopt;
  id128 id;
  if (text.size() > 16) {
    auto high = parse_hex64(text.substr(0, text.size() - 16));
    auto low = parse_hex64(text.substr(text.size() - 16));
    if (!high || !low) return std::nullopt;
    id.high = *high;
    id.low = *low;
  } else {
    auto low = parse_hex64(text);
    if (!low) return std::nullopt;
    id.low = *low;
  }
  return id;
}

namespace {
std::uint64_t read_be64(const char* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < span_id_bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
}  // namespace

std::optional<std::uint64_t> span_id_from_bytes(std::string_view bytes) noexcept {
  if (bytes.size() != span_id_bytes) return std::nullopt;
  return read_be64(bytes.data());
}

std::optional<id128> trace_id_from_bytes(std::string_view bytes) noexcept {
  if (bytes.size() == trace_id_bytes)
    return id128{read_be64(bytes.data()), read_be64(bytes.data() + span_id_bytes)};
  if (bytes.size() == span_id_bytes) return id128{0, read_be64(bytes.data())};
  return std::nullopt;
}

}  // namespace outrider::tracing
