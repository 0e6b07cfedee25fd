#include "tracing/recorded_span.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <mutex>
#include <type_traits>

#include "base/assert.h"

namespace outrider::tracing {
namespace {

constexpr std::string_view attr_names[] = {
#define OUTRIDER_ATTR_NAME(id, text) text,
    OUTRIDER_SPAN_ATTRIBUTES(OUTRIDER_ATTR_NAME)
#undef OUTRIDER_ATTR_NAME
};

}  // namespace

// The key fields of fixed keys are short: their KeyValue.key field is
// 0x0a, one length byte, the text.
static_assert(std::all_of(std::begin(attr_names), std::end(attr_names),
                          [](std::string_view n) { return n.size() < 0x80; }));

std::string_view attr_name(attr key) noexcept {
  const auto i = static_cast<std::size_t>(key);
  return i < std::size(attr_names) ? attr_names[i] : std::string_view();
}

void recorded_span::clear() noexcept {
  trace_id = {};
  span_id = 0;
  parent_id = 0;
  start_ns = 0;
  end_ns = 0;
  kind = span_kind::internal;
  status = status_code::unset;
  flags = 0;
  name = {};
  trace_state = {};
  status_message = {};
  // `resource` is kept: the next tracer to take the record usually sets the
  // same one, and an equal shared_ptr assigns without touching the (shared,
  // cross-thread) reference count.
  inline_count_ = 0;
  text_used_ = 0;
  // Usually all empty (a sidecar span fits the inline arrays): then nothing
  // more to do, and no call.
  if (!events.empty() || !links.empty() || !more_attributes_.empty() || !more_text_.empty()) {
    clear_overflow();
  }
}

void recorded_span::clear_overflow() noexcept {
  events.clear();
  links.clear();
  more_attributes_.clear();
  more_text_.clear();
}

namespace {

struct recorded_span_pool {
  std::mutex mutex;
  std::vector<std::vector<recorded_span_ptr>> batches;
  std::size_t pooled = 0;
};

recorded_span_pool& pool() {
  static auto* p = new recorded_span_pool;  // never destroyed: threads may release at exit
  return *p;
}

// This thread's records: a batch taken from the pool, and records given back
// by recycle_recorded_span.
thread_local std::vector<recorded_span_ptr> cache;
// Records recycle_recorded_span keeps per thread (enough for the spans a
// thread has open at once plus a pool batch).
constexpr std::size_t max_cached_recorded_spans = 256;

}  // namespace

recorded_span_ptr acquire_recorded_span() {
  if (cache.empty()) {
    auto& p = pool();
    std::vector<recorded_span_ptr> batch;
    {
      std::lock_guard lock(p.mutex);
      if (!p.batches.empty()) {
        batch = std::move(p.batches.back());
        p.batches.pop_back();
        p.pooled -= batch.size();
      }
    }
    if (batch.empty()) return std::make_unique<recorded_span>();
    cache.swap(batch);  // the empty vector `cache` had goes with `batch`
  }
  recorded_span_ptr s = std::move(cache.back());
  cache.pop_back();
  s->clear();  // here, on the thread about to write it anyway
  return s;
}

void recycle_recorded_span(recorded_span_ptr s) noexcept {
  if (cache.size() < max_cached_recorded_spans) cache.push_back(std::move(s));
}

void release_recorded_spans(std::vector<recorded_span_ptr>& spans) noexcept {
  if (spans.empty()) return;
  auto& p = pool();
  std::vector<recorded_span_ptr> taken;
  {
    std::lock_guard lock(p.mutex);
    if (p.pooled + spans.size() <= max_pooled_recorded_spans) {
      p.pooled += spans.size();
      p.batches.push_back(std::move(spans));
    } else {
      taken.swap(spans);  // freed below, outside the lock
    }
  }
  spans.clear();  // moved from: empty already
}

recorded_span::text_ref recorded_span::store(std::string_view s) {
  text_ref r{};
  r.size = static_cast<std::uint32_t>(s.size());
  if (s.size() <= inline_text_bytes - text_used_) {
    r.offset = text_used_;
    if (!s.empty()) std::memcpy(text_.data() + text_used_, s.data(), s.size());
    text_used_ += r.size;
  } else {
    r.offset = static_cast<std::uint32_t>(inline_text_bytes + more_text_.size());
    more_text_.append(s);
  }
  return r;
}

void recorded_span::add_more(const attribute& a) {
  more_attributes_.push_back(a);
}

void recorded_span::add_string(attr key, std::string_view value) {
  attribute a;
  a.key = key;
  a.kind = attribute_value::type::string;
  if (value.size() <= inline_text_bytes - text_used_ && inline_count_ < inline_attributes) {
    // The usual case, inline: what store() and add() do.
    a.text.offset = text_used_;
    a.text.size = static_cast<std::uint32_t>(value.size());
    if (!value.empty()) std::memcpy(text_.data() + text_used_, value.data(), value.size());
    text_used_ += a.text.size;
    attributes_[inline_count_++] = a;
    return;
  }
  a.text = store(value);
  add(a);
}

namespace {
using detail::packed_head;
static_assert(std::is_trivially_copyable_v<recorded_span::attribute>);

// A packed record read in place, with what write_span reads of a record by
// the same names: the head's fields (copied out), attributes (copied out one
// at a time), text (viewed where it is).
class packed_view : public packed_head {
 public:
  explicit packed_view(const char* p) noexcept : packed_head(read_head(p)) {
    attributes_ = p + sizeof(packed_head);
    text_ = attributes_ + attributes * sizeof(recorded_span::attribute);
  }
  const char* end() const noexcept { return text_ + text_used; }
  std::size_t attribute_count() const noexcept { return attributes; }
  recorded_span::attribute attribute_at(std::size_t i) const noexcept {
    recorded_span::attribute a;
    std::memcpy(&a, attributes_ + i * sizeof a, sizeof a);
    return a;
  }
  std::string_view text(recorded_span::text_ref r) const noexcept {
    return {text_ + r.offset, r.size};
  }
  std::string_view key_of(const recorded_span::attribute& a) const noexcept {
    return a.key == attr::custom ? text(recorded_span::text_ref{a.key_offset, a.key_size})
                                 : attr_name(a.key);
  }
  std::size_t text_bytes() const noexcept { return text_used; }

 private:
  static packed_head read_head(const char* p) noexcept {
    packed_head h;
    std::memcpy(&h, p, sizeof h);
    return h;
  }
  const char* attributes_ = nullptr;
  const char* text_ = nullptr;
};
}  // namespace

const char* recorded_span::unpack(const char* from) noexcept {
  packed_head h;
  std::memcpy(&h, from, sizeof h);
  from += sizeof h;
  trace_id = h.trace_id;
  span_id = h.span_id;
  parent_id = h.parent_id;
  start_ns = h.start_ns;
  end_ns = h.end_ns;
  name = h.name;
  trace_state = h.trace_state;
  status_message = h.status_message;
  kind = h.kind;
  status = h.status;
  flags = h.flags;
  inline_count_ = h.attributes;
  text_used_ = h.text_used;
  const std::size_t attributes = inline_count_ * sizeof(attribute);
  std::memcpy(attributes_.data(), from, attributes);
  from += attributes;
  std::memcpy(text_.data(), from, text_used_);
  events.clear();
  links.clear();
  more_attributes_.clear();
  more_text_.clear();
  return from + text_used_;
}

namespace {
// Attribute values are mostly short: fixed-size (inlined) moves that may
// overlap instead of a call to memcpy; exactly [to, to + n) is written.
inline void copy_text(char* to, const char* from, std::size_t n) noexcept {
  if (n >= 8 && n <= 16) {
    std::memcpy(to, from, 8);
    std::memcpy(to + n - 8, from + n - 8, 8);
  } else if (n > 16 && n <= 32) {
    std::memcpy(to, from, 16);
    std::memcpy(to + n - 16, from + n - 16, 16);
  } else if (n >= 4 && n < 8) {
    std::memcpy(to, from, 4);
    std::memcpy(to + n - 4, from + n - 4, 4);
  } else if (n < 4) {
    for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
  } else {
    std::memcpy(to, from, n);
  }
}
}  // namespace

recorded_span::text_ref recorded_span::store_joined(std::string_view a, std::string_view b) {
  const std::size_t size = a.size() + 1 + b.size();
  text_ref r{};
  r.size = static_cast<std::uint32_t>(size);
  if (size <= inline_text_bytes - text_used_) {
    r.offset = text_used_;
    char* to = text_.data() + text_used_;
    copy_text(to, a.data(), a.size());
    to[a.size()] = ' ';
    copy_text(to + a.size() + 1, b.data(), b.size());
    text_used_ += r.size;
  } else {
    r.offset = static_cast<std::uint32_t>(inline_text_bytes + more_text_.size());
    append_more_text(a, b);
  }
  return r;
}

void recorded_span::append_more_text(std::string_view a, std::string_view b) {
  more_text_.append(a).append(1, ' ').append(b);
}

void recorded_span::add_strings(std::span<const string_attribute> attributes) {
  std::size_t total = 0;
  for (const auto& a : attributes) total += a.value.size();
  if (attributes.size() > inline_attributes - inline_count_ ||
      total > inline_text_bytes - text_used_) {
    // Past the inline arrays: one at a time, as add_string decides for each.
    for (const auto& [key, value] : attributes) add_string(key, value);
    return;
  }
  // All inline: no check per attribute, the offsets and counts in registers.
  attribute* to = attributes_.data() + inline_count_;
  char* text = text_.data() + text_used_;
  std::uint32_t offset = text_used_;
  for (const auto& [key, value] : attributes) {
    const auto size = static_cast<std::uint32_t>(value.size());
    to->key = key;
    to->kind = attribute_value::type::string;
    to->key_size = 0;
    to->key_offset = 0;
    to->text = text_ref{offset, size};
    ++to;
    copy_text(text, value.data(), size);
    text += size;
    offset += size;
  }
  inline_count_ = static_cast<std::uint8_t>(inline_count_ + attributes.size());
  text_used_ = offset;
}

std::string_view recorded_span::service_name() const noexcept {
  if (!resource) return {};
  for (const auto& kv : resource->attributes) {
    if (kv.key == "service.name") return kv.value.string_value;
  }
  return {};
}

span recorded_span::to_span() const {
  span s;
  s.trace_id = trace_id;
  s.span_id = span_id;
  s.parent_id = parent_id;
  s.name = text(name);
  s.kind = kind;
  s.start_ns = start_ns;
  s.end_ns = end_ns;
  s.trace_state = text(trace_state);
  s.flags = flags;
  s.local_endpoint.service_name = service_name();
  s.resource = resource;
  s.status.code = status;
  s.status.message = text(status_message);
  s.attributes.reserve(attribute_count());
  for (std::size_t i = 0; i < attribute_count(); ++i) {
    const attribute& a = attribute_at(i);
    key_value kv;
    kv.key = key_of(a);
    switch (a.kind) {
      case attribute_value::type::string:
        kv.value = attribute_value::of(std::string(text(a.text)));
        break;
      case attribute_value::type::boolean:
        kv.value = attribute_value::of_bool(a.number != 0);
        break;
      case attribute_value::type::int64: kv.value = attribute_value::of_int(a.number); break;
      case attribute_value::type::float64:
        kv.value = attribute_value::of_double(std::bit_cast<double>(a.number));
        break;
      default: break;
    }
    s.attributes.push_back(std::move(kv));
  }
  s.events = events;
  s.links = links;
  return s;
}

// ---------------- OTLP protobuf, field by field ----------------

namespace {

using google::protobuf::io::CodedOutputStream;
using wire = google::protobuf::internal::WireFormatLite;

void put_varint(std::string& out, std::uint64_t v) {
  std::uint8_t buf[10];
  const std::uint8_t* end = CodedOutputStream::WriteVarint64ToArray(v, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(end - buf));
}

void put_tag(std::string& out, int field, wire::WireType type) {
  put_varint(out, wire::MakeTag(field, type));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_tag(out, field, wire::WIRETYPE_LENGTH_DELIMITED);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_fixed64(std::string& out, int field, std::uint64_t v) {
  put_tag(out, field, wire::WIRETYPE_FIXED64);
  std::uint8_t buf[8];
  CodedOutputStream::WriteLittleEndian64ToArray(v, buf);
  out.append(reinterpret_cast<const char*>(buf), sizeof buf);
}

void put_fixed32(std::string& out, int field, std::uint32_t v) {
  put_tag(out, field, wire::WIRETYPE_FIXED32);
  std::uint8_t buf[4];
  CodedOutputStream::WriteLittleEndian32ToArray(v, buf);
  out.append(reinterpret_cast<const char*>(buf), sizeof buf);
}

void put_uint(std::string& out, int field, std::uint64_t v) {
  put_tag(out, field, wire::WIRETYPE_VARINT);
  put_varint(out, v);
}

// Big-endian id bytes, as OTLP carries them.
void put_span_id(std::string& out, int field, std::uint64_t id) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(id >> (56 - 8 * i));
  put_bytes(out, field, std::string_view(b, sizeof b));
}

void put_trace_id(std::string& out, int field, const id128& id) {
  char b[16];
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<char>(id.high >> (56 - 8 * i));
    b[8 + i] = static_cast<char>(id.low >> (56 - 8 * i));
  }
  put_bytes(out, field, std::string_view(b, sizeof b));
}

// span_kind and status_code use OTLP's enum numbers (SpanKind, Status.StatusCode).
static_assert(static_cast<int>(span_kind::consumer) == 5 &&
              static_cast<int>(span_kind::server) == 2);
static_assert(static_cast<int>(status_code::error) == 2);
int otlp_kind(span_kind k) {
  return static_cast<int>(k);
}
int otlp_status(status_code c) {
  return static_cast<int>(c);
}

std::size_t varint_size(std::uint64_t v) {
  return CodedOutputStream::VarintSize64(v);
}

// AnyValue fields.
constexpr int any_string = 1;
constexpr int any_bool = 2;
constexpr int any_int = 3;
constexpr int any_double = 4;
constexpr int any_array = 5;
constexpr int any_kvlist = 6;
constexpr int any_bytes = 7;

void put_key_values(std::string& out, int field, const attribute_list& attrs);

// The AnyValue message body of `v` (the general case: resources, events, links).
void put_any_value_body(std::string& out, const attribute_value& v) {
  using t = attribute_value::type;
  switch (v.kind) {
    case t::empty: return;
    case t::string: put_bytes(out, any_string, v.string_value); return;
    case t::boolean: put_uint(out, any_bool, v.bool_value ? 1 : 0); return;
    case t::int64: put_uint(out, any_int, static_cast<std::uint64_t>(v.int_value)); return;
    case t::float64:
      put_fixed64(out, any_double, std::bit_cast<std::uint64_t>(v.double_value));
      return;
    case t::bytes: put_bytes(out, any_bytes, v.string_value); return;
    case t::array: {
      std::string list;
      for (const auto& item : v.array) {
        std::string body;
        put_any_value_body(body, item);
        put_bytes(list, 1, body);
      }
      put_bytes(out, any_array, list);
      return;
    }
    case t::kvlist: {
      std::string list;
      put_key_values(list, 1, v.kvlist);
      put_bytes(out, any_kvlist, list);
      return;
    }
  }
}

void put_key_values(std::string& out, int field, const attribute_list& attrs) {
  for (const auto& kv : attrs) {
    std::string body;
    put_bytes(body, 1, kv.key);
    std::string value;
    put_any_value_body(value, kv.value);
    put_bytes(body, 2, value);
    put_bytes(out, field, body);
  }
}

// One recorded attribute as a KeyValue (sizes computed, no temporaries).
void put_attribute(std::string& out, int field, const recorded_span& s,
                   const recorded_span::attribute& a) {
  using t = attribute_value::type;
  const std::string_view key = s.key_of(a);
  std::string_view text;
  std::size_t value_size = 0;  // AnyValue body
  switch (a.kind) {
    case t::string:
      text = s.text(a.text);
      value_size = 1 + varint_size(text.size()) + text.size();
      break;
    case t::boolean: value_size = 2; break;
    case t::int64: value_size = 1 + varint_size(static_cast<std::uint64_t>(a.number)); break;
    case t::float64: value_size = 1 + 8; break;
    default: break;
  }
  const std::size_t kv_size =
      1 + varint_size(key.size()) + key.size() + 1 + varint_size(value_size) + value_size;
  put_tag(out, field, wire::WIRETYPE_LENGTH_DELIMITED);
  put_varint(out, kv_size);
  put_bytes(out, 1, key);
  put_tag(out, 2, wire::WIRETYPE_LENGTH_DELIMITED);
  put_varint(out, value_size);
  switch (a.kind) {
    case t::string: put_bytes(out, any_string, text); break;
    case t::boolean: put_uint(out, any_bool, a.number != 0 ? 1 : 0); break;
    case t::int64: put_uint(out, any_int, static_cast<std::uint64_t>(a.number)); break;
    case t::float64: put_fixed64(out, any_double, static_cast<std::uint64_t>(a.number)); break;
    default: break;
  }
}

// Span fields (opentelemetry/proto/trace/v1/trace.proto).
void put_span(std::string& out, const recorded_span& s) {
  put_trace_id(out, 1, s.trace_id);
  put_span_id(out, 2, s.span_id);
  if (s.trace_state.size != 0) put_bytes(out, 3, s.text(s.trace_state));
  if (s.parent_id != 0) put_span_id(out, 4, s.parent_id);
  put_bytes(out, 5, s.text(s.name));
  const int kind = otlp_kind(s.kind);
  if (kind != 0) put_uint(out, 6, static_cast<std::uint64_t>(kind));
  put_fixed64(out, 7, static_cast<std::uint64_t>(s.start_ns));
  put_fixed64(out, 8, static_cast<std::uint64_t>(s.end_ns));
  for (std::size_t i = 0; i < s.attribute_count(); ++i) put_attribute(out, 9, s, s.attribute_at(i));
  for (const auto& e : s.events) {
    std::string body;
    put_fixed64(body, 1, static_cast<std::uint64_t>(e.time_ns));
    put_bytes(body, 2, e.name);
    put_key_values(body, 3, e.attributes);
    put_bytes(out, 11, body);
  }
  for (const auto& l : s.links) {
    std::string body;
    put_trace_id(body, 1, l.trace_id);
    put_span_id(body, 2, l.span_id);
    if (!l.trace_state.empty()) put_bytes(body, 3, l.trace_state);
    put_key_values(body, 4, l.attributes);
    put_bytes(out, 13, body);
  }
  if (s.status != status_code::unset || s.status_message.size != 0) {
    std::string body;
    if (s.status_message.size != 0) put_bytes(body, 2, s.text(s.status_message));
    const int code = otlp_status(s.status);
    if (code != 0) put_uint(body, 3, static_cast<std::uint64_t>(code));
    put_bytes(out, 15, body);
  }
  if (s.flags != 0) put_fixed32(out, 16, s.flags);
}

}  // namespace

namespace {

std::size_t tag_size(int field) {
  return varint_size(wire::MakeTag(field, wire::WIRETYPE_VARINT));
}
std::size_t bytes_field_size(int field, std::size_t n) {
  return tag_size(field) + varint_size(n) + n;
}

// The AnyValue body size of a recorded attribute's value.
[[gnu::always_inline]] inline std::size_t value_size(const recorded_span::attribute& a) noexcept {
  using t = attribute_value::type;
  switch (a.kind) {
    case t::string: return bytes_field_size(any_string, a.text.size);
    case t::boolean: return 2;
    case t::int64: return 1 + varint_size(static_cast<std::uint64_t>(a.number));
    case t::float64: return 1 + 8;
    default: return 0;
  }
}

// put_span's output size, computed without writing (0: the span has events or
// links, which put_span writes through temporaries: encode it to measure).
std::size_t span_size(const recorded_span& s) {
  if (!s.events.empty() || !s.links.empty()) return 0;
  constexpr std::size_t trace_id_field = 1 + 1 + 16;
  constexpr std::size_t span_id_field = 1 + 1 + 8;
  constexpr std::size_t fixed64_field = 1 + 8;
  std::size_t n = trace_id_field + span_id_field + 2 * fixed64_field;
  if (s.trace_state.size != 0) n += bytes_field_size(3, s.trace_state.size);
  if (s.parent_id != 0) n += span_id_field;
  n += bytes_field_size(5, s.name.size);
  const int kind = otlp_kind(s.kind);
  if (kind != 0) n += tag_size(6) + varint_size(static_cast<std::uint64_t>(kind));
  const std::size_t count = s.attribute_count();
  for (std::size_t i = 0; i < count; ++i) {
    const auto& a = s.attribute_at(i);
    const std::size_t key =
        a.key == attr::custom ? a.key_size : attr_names[static_cast<std::size_t>(a.key)].size();
    n += bytes_field_size(9, bytes_field_size(1, key) + bytes_field_size(2, value_size(a)));
  }
  if (s.status != status_code::unset || s.status_message.size != 0) {
    std::size_t body = 0;
    if (s.status_message.size != 0) body += bytes_field_size(2, s.status_message.size);
    const int code = otlp_status(s.status);
    if (code != 0) body += tag_size(3) + varint_size(static_cast<std::uint64_t>(code));
    n += bytes_field_size(15, body);
  }
  if (s.flags != 0) n += tag_size(16) + 4;
  return n;
}

// Writes into memory sized beforehand (span_size): no appends, no bounds checks.
// Every field number below 16 has a one-byte tag (written as a constant).
struct cursor {
  char* p;
  static constexpr char tag_byte(int field, wire::WireType type) noexcept {
    return static_cast<char>(wire::MakeTag(field, type));
  }
  template <int Field, wire::WireType Type>
  void tag() noexcept {
    static_assert(Field > 0 && Field < 16);
    *p++ = tag_byte(Field, Type);
  }
  void varint(std::uint64_t v) noexcept {
    if (v < 0x80) {  // lengths are mostly short
      *p++ = static_cast<char>(v);
      return;
    }
    do {
      *p++ = static_cast<char>(v | 0x80);
      v >>= 7;
    } while (v >= 0x80);
    *p++ = static_cast<char>(v);
  }
  void raw(std::string_view b) noexcept {
    copy(p, b.data(), b.size());
    p += b.size();
  }
  // Keys and values are mostly short: copy_text's fixed-size moves.
  static void copy(char* to, const char* from, std::size_t n) noexcept { copy_text(to, from, n); }
  template <int Field>
  void bytes(std::string_view b) noexcept {
    tag<Field, wire::WIRETYPE_LENGTH_DELIMITED>();
    varint(b.size());
    raw(b);
  }
  void le64(std::uint64_t v) noexcept {
    if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
    p += 8;
  }
  void be64(std::uint64_t v) noexcept {  // ids: big-endian bytes, as OTLP carries them
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
    p += 8;
  }
  template <int Field>
  void fixed64(std::uint64_t v) noexcept {
    tag<Field, wire::WIRETYPE_FIXED64>();
    le64(v);
  }
  template <int Field>
  void uint(std::uint64_t v) noexcept {
    tag<Field, wire::WIRETYPE_VARINT>();
    varint(v);
  }
  template <int Field>
  void id64(std::uint64_t id) noexcept {
    tag<Field, wire::WIRETYPE_LENGTH_DELIMITED>();
    *p++ = 8;
    be64(id);
  }
  template <int Field>
  void id128(const outrider::id128& id) noexcept {
    tag<Field, wire::WIRETYPE_LENGTH_DELIMITED>();
    *p++ = 16;
    be64(id.high);
    be64(id.low);
  }
};

// A fixed key's KeyValue up to its value's first byte, written beforehand:
// 0x4a (Span.attributes), the KeyValue's length, the key field (0x0a, its
// length, its text), 0x12 (KeyValue.value), the AnyValue's length, 0x0a
// (AnyValue.string_value; an int64's value overwrites it with 0x18).
// The two lengths are left 0 and set per attribute: one copy and three byte
// stores instead of a tag, a length and the text per field.
constexpr std::size_t longest_key_field = [] {
  std::size_t n = 0;
  for (auto name : attr_names) n = std::max(n, 2 + name.size());
  return n;
}();
// Bytes of a head in front of the key field, and after it up to the value.
constexpr std::size_t kv_head_before_key = 2;
constexpr std::size_t kv_head_after_key = 3;
struct alignas(64) kv_head {  // one cache line, indexed by a shift
  // Padded to a multiple of 16 bytes: with room after it, copied whole.
  std::array<char, (kv_head_before_key + longest_key_field + kv_head_after_key + 15) / 16 * 16>
      bytes{};
  std::uint8_t key_field = 0;  // the key field's size: 2 + the key's
};
static_assert(sizeof(kv_head) == 64);
constexpr auto kv_heads = [] {
  std::array<kv_head, std::size(attr_names)> heads{};
  for (std::size_t i = 0; i < heads.size(); ++i) {
    const std::string_view name = attr_names[i];
    auto& b = heads[i].bytes;
    b[0] = cursor::tag_byte(9, wire::WIRETYPE_LENGTH_DELIMITED);
    b[2] = cursor::tag_byte(1, wire::WIRETYPE_LENGTH_DELIMITED);
    b[3] = static_cast<char>(name.size());
    for (std::size_t j = 0; j < name.size(); ++j) b[4 + j] = name[j];
    const std::size_t after = 4 + name.size();
    b[after] = cursor::tag_byte(2, wire::WIRETYPE_LENGTH_DELIMITED);
    b[after + 2] = cursor::tag_byte(1, wire::WIRETYPE_LENGTH_DELIMITED);  // any_string
    heads[i].key_field = static_cast<std::uint8_t>(2 + name.size());
  }
  return heads;
}();
// A fixed key's string value shorter than this has a KeyValue of one-byte
// lengths: tag, length, key field, 0x12, length, 0x0a, length, text (< 0x80 bytes).
constexpr std::size_t short_string_value = 0x80 - 4 - longest_key_field;
static_assert(short_string_value > 0);

// Text of a packed record is followed by at least packed_slack readable
// bytes (the exporter's chunk buffers have them): copied 32 bytes at once (most
// texts are shorter), then in 16-byte blocks, which may write up to 31 bytes
// past the text (inside span_size_bound's room).
template <class Record>
constexpr bool text_has_read_slack = false;
template <>
constexpr bool text_has_read_slack<packed_view> = true;
constexpr std::size_t text_overrun = 32;
static_assert(packed_slack >= text_overrun);
inline void copy_text_with_slack(char* to, const char* from, std::size_t n) noexcept {
  std::memcpy(to, from, text_overrun);
  for (std::size_t i = text_overrun; i < n; i += 16) std::memcpy(to + i, from + i, 16);
}

// put_span for a span without events or links, `size` bytes (span_size).
// The cursor is a local (its address never escapes), so that its pointer
// stays in a register: stores through a char* could alias a cursor in memory.
// `Record`: a recorded_span, or a packed_view of one's packed bytes.
// `Slack`: the memory after the span's end has room for what span_size_bound
// allows (write_span_field): a fixed key's field is copied whole, padding
// included, and the padding overwritten by what follows.
template <bool Slack, class Record>
char* write_span(char* at, const Record& s) noexcept {
  using t = attribute_value::type;
  cursor c{at};
  c.id128<1>(s.trace_id);
  c.id64<2>(s.span_id);
  // A text field: tag, length, text (copied with slack from a packed record).
  const auto text_field = [&c]<int Field>(std::string_view text) {
    if constexpr (Slack && text_has_read_slack<Record>) {
      c.tag<Field, wire::WIRETYPE_LENGTH_DELIMITED>();
      c.varint(text.size());
      copy_text_with_slack(c.p, text.data(), text.size());
      c.p += text.size();
    } else {
      c.bytes<Field>(text);
    }
  };
  if (s.trace_state.size != 0) text_field.template operator()<3>(s.text(s.trace_state));
  if (s.parent_id != 0) c.id64<4>(s.parent_id);
  text_field.template operator()<5>(s.text(s.name));
  const int kind = otlp_kind(s.kind);
  if (kind != 0) c.uint<6>(static_cast<std::uint64_t>(kind));
  c.fixed64<7>(static_cast<std::uint64_t>(s.start_ns));
  c.fixed64<8>(static_cast<std::uint64_t>(s.end_ns));
  const std::size_t count = s.attribute_count();
  for (std::size_t i = 0; i < count; ++i) {
    const auto& a = s.attribute_at(i);
    if (a.key != attr::custom &&
        (a.kind == t::int64 || (a.kind == t::string && a.text.size < short_string_value))) {
      // The usual attribute: every length one byte (an int64's value is at
      // most 11), the head copied from the table and its lengths set.
      const kv_head& k = kv_heads[static_cast<std::size_t>(a.key)];
      const std::size_t key_field = k.key_field;
      char* const head = c.p;
      const std::size_t after_key = kv_head_before_key + key_field;
      if constexpr (Slack) {
        std::memcpy(head, k.bytes.data(), k.bytes.size());
      } else {
        cursor::copy(head, k.bytes.data(), after_key + kv_head_after_key);
      }
      if (a.kind == t::string) {
        const std::size_t n = a.text.size;
        head[1] = static_cast<char>(key_field + 4 + n);
        head[after_key + 1] = static_cast<char>(2 + n);
        head[after_key + 3] = static_cast<char>(n);
        c.p = head + after_key + 4;
        const char* const from = s.text(a.text).data();
        if constexpr (Slack && text_has_read_slack<Record>) {
          copy_text_with_slack(c.p, from, n);
        } else {
          cursor::copy(c.p, from, n);
        }
        c.p += n;
      } else {
        const auto v = static_cast<std::uint64_t>(a.number);
        const std::size_t width = varint_size(v);
        head[1] = static_cast<char>(key_field + 3 + width);
        head[after_key + 1] = static_cast<char>(1 + width);
        head[after_key + 2] = cursor::tag_byte(any_int, wire::WIRETYPE_VARINT);
        c.p = head + after_key + 3;
        c.varint(v);
      }
      continue;
    }
    const std::size_t value = value_size(a);
    c.tag<9, wire::WIRETYPE_LENGTH_DELIMITED>();
    if (a.key != attr::custom) {
      const std::string_view key = attr_names[static_cast<std::size_t>(a.key)];
      c.varint(2 + key.size() + bytes_field_size(2, value));
      c.tag<1, wire::WIRETYPE_LENGTH_DELIMITED>();
      *c.p++ = static_cast<char>(key.size());  // < 0x80 (static_assert above)
      c.raw(key);
    } else {
      const std::string_view key = s.key_of(a);
      c.varint(bytes_field_size(1, key.size()) + bytes_field_size(2, value));
      c.bytes<1>(key);
    }
    c.tag<2, wire::WIRETYPE_LENGTH_DELIMITED>();
    c.varint(value);
    switch (a.kind) {
      case t::string: c.bytes<any_string>(s.text(a.text)); break;
      case t::boolean: c.uint<any_bool>(a.number != 0 ? 1 : 0); break;
      case t::int64: c.uint<any_int>(static_cast<std::uint64_t>(a.number)); break;
      case t::float64: c.fixed64<any_double>(static_cast<std::uint64_t>(a.number)); break;
      default: break;
    }
  }
  if (s.status != status_code::unset || s.status_message.size != 0) {
    std::size_t body = 0;
    const int code = otlp_status(s.status);
    if (s.status_message.size != 0) body += bytes_field_size(2, s.status_message.size);
    if (code != 0) body += tag_size(3) + varint_size(static_cast<std::uint64_t>(code));
    c.tag<15, wire::WIRETYPE_LENGTH_DELIMITED>();
    c.varint(body);
    if (s.status_message.size != 0) text_field.template operator()<2>(s.text(s.status_message));
    if (code != 0) c.uint<3>(static_cast<std::uint64_t>(code));
  }
  if (s.flags != 0) {
    // Field 16 (flags, fixed32): a two-byte tag.
    constexpr std::uint32_t tag = wire::MakeTag(16, wire::WIRETYPE_FIXED32);
    static_assert(tag >= 0x80 && tag < 0x4000);
    *c.p++ = static_cast<char>(tag | 0x80);
    *c.p++ = static_cast<char>(tag >> 7);
    std::uint32_t v = s.flags;
    if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap32(v);
    std::memcpy(c.p, &v, 4);
    c.p += 4;
  }
  return c.p;
}

}  // namespace

std::size_t write_otlp_protobuf(std::string& out, std::size_t at,
                                std::span<const recorded_span_ptr> spans) {
  OUTRIDER_ASSERT(at <= out.size(), "write_otlp_protobuf past the end of its buffer");
  static const span_resource no_resource;
  const auto resource_of = [](const recorded_span& s) {
    return s.resource ? s.resource.get() : &no_resource;
  };
  // Resources in first-seen order (a sidecar has one).
  std::vector<const span_resource*> resources;
  for (const auto& s : spans) {
    const span_resource* r = resource_of(*s);
    if (std::find(resources.begin(), resources.end(), r) == resources.end()) resources.push_back(r);
  }
  // Sizes first, then the group's bytes written once into memory sized for them.
  thread_local std::vector<std::size_t> sizes;
  thread_local std::string one;  // a span with events or links (written through temporaries)
  thread_local std::string head;
  for (const span_resource* r : resources) {
    sizes.clear();
    std::size_t group = 0;
    for (const auto& s : spans) {
      if (resource_of(*s) != r) continue;
      std::size_t n = span_size(*s);
      if (n == 0) {
        one.clear();
        put_span(one, *s);
        n = one.size();
      }
      sizes.push_back(n);
      group += bytes_field_size(2, n);  // ScopeSpans.spans
    }
    std::string scope;
    if (!r->scope_name.empty()) put_bytes(scope, 1, r->scope_name);
    if (!r->scope_version.empty()) put_bytes(scope, 2, r->scope_version);
    std::string resource;
    put_key_values(resource, 1, r->attributes);
    // ResourceSpans { resource (1), scope_spans (2): ScopeSpans { scope (1), spans (2)... } }.
    const std::size_t scope_spans_size = bytes_field_size(1, scope.size()) + group;
    const std::size_t resource_spans_size =
        bytes_field_size(1, resource.size()) + bytes_field_size(2, scope_spans_size);
    head.clear();
    put_tag(head, 1, wire::WIRETYPE_LENGTH_DELIMITED);  // ExportTraceServiceRequest.resource_spans
    put_varint(head, resource_spans_size);
    put_bytes(head, 1, resource);
    put_tag(head, 2, wire::WIRETYPE_LENGTH_DELIMITED);
    put_varint(head, scope_spans_size);
    put_bytes(head, 1, scope);
    const std::size_t end = at + head.size() + group;
    if (out.size() < end) out.resize(end);
    cursor c{out.data() + at};
    c.raw(head);
    std::size_t i = 0;
    for (const auto& s : spans) {
      if (resource_of(*s) != r) continue;
      const std::size_t n = sizes[i++];
      c.tag<2, wire::WIRETYPE_LENGTH_DELIMITED>();
      c.varint(n);
      if (!s->events.empty() || !s->links.empty()) {
        one.clear();
        put_span(one, *s);
        c.raw(one);
      } else {
        c.p = write_span<false>(c.p, *s);
      }
    }
    OUTRIDER_ASSERT(c.p == out.data() + end, "span_size and write_span disagree");
    at = end;
  }
  return at;
}

void append_otlp_protobuf(std::string& out, std::span<const recorded_span_ptr> spans) {
  out.resize(write_otlp_protobuf(out, out.size(), spans));
}

namespace {

constexpr std::size_t longest_attr_name = [] {
  std::size_t n = 0;
  for (auto name : attr_names) n = std::max(n, name.size());
  return n;
}();

// At least the bytes write_span writes for `s` (ids, times, kind, flags and
// field headers; every byte of text; per attribute a fixed key and the headers
// of a KeyValue and its value), without looking at the attributes.
template <class Record>
std::size_t span_size_bound(const Record& s) noexcept {
  constexpr std::size_t fixed = 128;  // ids, times, kind, flags, status, headers
  constexpr std::size_t per_attribute = 48 + longest_attr_name;  // headers, a 10-byte varint
  // write_span<true> copies a fixed key's head whole at the attribute's start, and a packed
  // record's text with up to text_overrun - 1 bytes more.
  static_assert(per_attribute >= sizeof(kv_head::bytes) &&
                per_attribute >=
                    kv_head_before_key + longest_key_field + kv_head_after_key + 1 + text_overrun);
  return fixed + s.text_bytes() + s.attribute_count() * per_attribute;
}

// ScopeSpans.spans (2) for a span without events or links at `at`: a tag,
// the length (two bytes left for it), the span; returns where it ends.
template <class Record>
std::size_t write_span_field(std::string& buffer, std::size_t at, const Record& s) {
  constexpr std::size_t max_length_width = 5;  // spans < 32 GiB
  const std::size_t need = at + 1 + max_length_width + span_size_bound(s);
  if (buffer.size() < need) buffer.resize(std::max(need, 2 * buffer.size()));
  char* const start = buffer.data() + at;
  start[0] = cursor::tag_byte(2, wire::WIRETYPE_LENGTH_DELIMITED);
  const char* const end = write_span<true>(start + 3, s);
  const auto n = static_cast<std::size_t>(end - (start + 3));
  OUTRIDER_ASSERT(n <= span_size_bound(s), "span_size_bound is not a bound");
  const std::size_t width = varint_size(n);
  if (width != 2) std::memmove(start + 1 + width, start + 3, n);  // < 128 or >= 16384 bytes
  cursor len{start + 1};
  len.varint(n);
  return at + 1 + width + n;
}

}  // namespace

std::size_t write_packed_otlp_protobuf_span_field(std::string& buffer, std::size_t at,
                                                  const char*& packed) {
  OUTRIDER_ASSERT(at <= buffer.size(), "write_packed_otlp_protobuf_span_field past the end");
  const packed_view view(packed);
  packed = view.end();
  return write_span_field(buffer, at, view);
}

std::size_t write_otlp_protobuf_span_field(std::string& buffer, std::size_t at,
                                           const recorded_span& s) {
  OUTRIDER_ASSERT(at <= buffer.size(), "write_otlp_protobuf_span_field past the end");
  if (s.events.empty() && s.links.empty()) return write_span_field(buffer, at, s);
  thread_local std::string one;  // events and links are written through temporaries
  one.clear();
  put_span(one, s);
  const std::size_t field = bytes_field_size(2, one.size());
  if (buffer.size() < at + field) buffer.resize(std::max(at + field, 2 * buffer.size()));
  cursor c{buffer.data() + at};
  c.bytes<2>(one);
  return at + field;
}

void append_otlp_protobuf_head(std::string& out, const span_resource* resource,
                               std::size_t spans_size) {
  static const span_resource no_resource;
  const span_resource& r = resource != nullptr ? *resource : no_resource;
  thread_local std::string scope;
  thread_local std::string attributes;
  scope.clear();
  if (!r.scope_name.empty()) put_bytes(scope, 1, r.scope_name);
  if (!r.scope_version.empty()) put_bytes(scope, 2, r.scope_version);
  attributes.clear();
  put_key_values(attributes, 1, r.attributes);
  // ResourceSpans { resource (1), scope_spans (2): ScopeSpans { scope (1), spans (2)... } }.
  const std::size_t scope_spans_size = bytes_field_size(1, scope.size()) + spans_size;
  const std::size_t resource_spans_size =
      bytes_field_size(1, attributes.size()) + bytes_field_size(2, scope_spans_size);
  put_tag(out, 1, wire::WIRETYPE_LENGTH_DELIMITED);  // ExportTraceServiceRequest.resource_spans
  put_varint(out, resource_spans_size);
  put_bytes(out, 1, attributes);
  put_tag(out, 2, wire::WIRETYPE_LENGTH_DELIMITED);
  put_varint(out, scope_spans_size);
  put_bytes(out, 1, scope);
}

std::string_view encode_otlp_protobuf_into(std::string& buffer,
                                           std::span<const recorded_span_ptr> spans) {
  const span_resource* const resource = spans.empty() ? nullptr : spans.front()->resource.get();
  bool one_pass = resource != nullptr;
  for (const auto& s : spans) {
    one_pass = one_pass && s->resource.get() == resource && s->events.empty() && s->links.empty();
  }
  if (!one_pass) {
    const std::size_t n = write_otlp_protobuf(buffer, 0, spans);  // may move `buffer`
    return std::string_view(buffer).substr(0, n);
  }
  // ExportTraceServiceRequest { resource_spans (1): ResourceSpans { resource (1),
  // scope_spans (2): ScopeSpans { scope (1), spans (2)... } } }: the spans are
  // written first, after room for the head, whose lengths are known only then.
  thread_local std::string fields;  // Resource and InstrumentationScope bodies
  fields.clear();
  put_key_values(fields, 1, resource->attributes);
  const std::size_t resource_size = fields.size();
  if (!resource->scope_name.empty()) put_bytes(fields, 1, resource->scope_name);
  if (!resource->scope_version.empty()) put_bytes(fields, 2, resource->scope_version);
  const std::size_t scope_size = fields.size() - resource_size;
  constexpr std::size_t max_varint = 10;
  const std::size_t head_room = 3 * (1 + max_varint) + 2 * (1 + max_varint) + fields.size();
  std::size_t at = head_room;  // offsets: growing `buffer` moves it
  for (const auto& s : spans) at = write_span_field(buffer, at, *s);
  const std::size_t group = at - head_room;
  const std::size_t scope_spans_size = bytes_field_size(1, scope_size) + group;
  const std::size_t resource_spans_size =
      bytes_field_size(1, resource_size) + bytes_field_size(2, scope_spans_size);
  const std::size_t head_size = 1 + varint_size(resource_spans_size) +
                                bytes_field_size(1, resource_size) + 1 +
                                varint_size(scope_spans_size) + bytes_field_size(1, scope_size);
  OUTRIDER_ASSERT(head_size <= head_room, "the head does not fit its room");
  const std::size_t begin = head_room - head_size;
  cursor c{buffer.data() + begin};
  c.tag<1, wire::WIRETYPE_LENGTH_DELIMITED>();
  c.varint(resource_spans_size);
  c.bytes<1>(std::string_view(fields).substr(0, resource_size));
  c.tag<2, wire::WIRETYPE_LENGTH_DELIMITED>();
  c.varint(scope_spans_size);
  c.bytes<1>(std::string_view(fields).substr(resource_size));
  OUTRIDER_ASSERT(c.p == buffer.data() + head_room, "the head's size is wrong");
  return std::string_view(buffer).substr(begin, at - begin);
}

std::string encode_otlp_protobuf(std::span<const recorded_span_ptr> spans) {
  std::string out;
  append_otlp_protobuf(out, spans);
  return out;
}

}  // namespace outrider::tracing
