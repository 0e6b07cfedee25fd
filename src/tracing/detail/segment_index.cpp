#include "tracing/detail/segment_index.h"

#include <cstring>

#include "base/crc32c.h"
#include "tracing/span_store_format.h"

namespace outrider::tracing::detail {
namespace {

namespace fmt_ = span_store_format;
constexpr unsigned varint_payload_bits = 7;
constexpr std::uint8_t varint_mask = 0x7f;
constexpr std::uint8_t varint_more = 0x80;
constexpr unsigned max_varint_shift = 63;
constexpr std::size_t crc_bytes = 4;

class writer {
 public:
  explicit writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(std::uint64_t v) {
    while (v >= varint_more) {
      out_.push_back(static_cast<char>((v & varint_mask) | varint_more));
      v >>= varint_payload_bits;
    }
    out_.push_back(static_cast<char>(v));
  }
  void zigzag(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void fixed32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void fixed64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void text(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

class reader {
 public:
  explicit reader(std::span<const std::byte> in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool failed() const noexcept { return failed_; }
  bool at_end() const noexcept { return p_ == end_; }
  std::uint8_t u8() {
    if (p_ == end_) return fail<std::uint8_t>();
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift <= max_varint_shift; shift += varint_payload_bits) {
      if (p_ == end_) return fail<std::uint64_t>();
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & varint_mask) << shift;
      if ((b & varint_more) == 0) return v;
    }
    return fail<std::uint64_t>();
  }
  std::uint32_t varint32() {
    const std::uint64_t v = varint();
    if (v > 0xffffffffU) return fail<std::uint32_t>();
    return static_cast<std::uint32_t>(v);
  }
  std::int64_t zigzag() {
    const std::uint64_t u = varint();
    return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
  }
  std::uint32_t fixed32() {
    if (end_ - p_ < 4) return fail<std::uint32_t>();
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(p_[i])} << (8 * i);
    p_ += 4;
    return v;
  }
  std::uint64_t fixed64() {
    if (end_ - p_ < 8) return fail<std::uint64_t>();
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(p_[i])} << (8 * i);
    p_ += 8;
    return v;
  }
  std::string text() {
    const std::uint64_t n = varint();
    if (failed_ || n > static_cast<std::uint64_t>(end_ - p_)) return fail<std::string>();
    std::string s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  // A count of items each at least `min_bytes` long (bounds allocations on bad input).
  std::size_t count(std::size_t min_bytes = 1) {
    const std::uint64_t n = varint();
    if (failed_ || n > static_cast<std::uint64_t>(end_ - p_) / min_bytes)
      return fail<std::size_t>();
    return static_cast<std::size_t>(n);
  }

 private:
  template <typename T>
  T fail() {
    failed_ = true;
    p_ = end_;
    return T{};
  }
  const std::byte* p_;
  const std::byte* end_;
  bool failed_ = false;
};

error corrupt(std::string_view what) {
  return error(errc::data_corruption, "span store segment index: " + std::string(what));
}

}  // namespace

std::string encode_segment_index(const segment_index& index) {
  std::string out;
  out.reserve(64 + index.records.size() * 48 + index.spans.size() * 6);
  writer w(out);
  w.fixed32(fmt_::index_magic);
  w.u8(fmt_::index_version);
  w.varint(index.segment);
  w.varint(index.strings.size() - 1);
  for (std::size_t i = 1; i < index.strings.size(); ++i) w.text(index.strings[i]);
  w.varint(index.tag_keys.size());
  for (const auto& k : index.tag_keys) w.text(k);
  w.varint(index.tag_values.size());
  for (const auto& [k, v] : index.tag_values) {
    w.text(k);
    w.text(v);
  }
  w.varint(index.records.size());
  w.varint(index.spans.size());
  w.varint(index.links.size());
  std::size_t span_at = 0;
  std::size_t link_at = 0;
  std::uint64_t previous_offset = 0;
  for (const auto& r : index.records) {
    w.varint(r.offset - previous_offset);  // records are in log order
    previous_offset = r.offset;
    w.zigzag(r.ingest_ms);
    w.fixed64(r.trace_id.high);
    w.fixed64(r.trace_id.low);
    w.varint(r.bytes);
    w.zigzag(r.root_start_us);
    w.zigzag(r.min_start_us);
    w.varint(r.span_count);
    for (std::uint32_t i = 0; i < r.span_count; ++i) {
      const auto& s = index.spans[span_at++];
      w.varint(s.service);
      w.varint(s.name);
      w.varint(s.remote);
      w.varint(s.duration_us);
    }
    w.varint(r.link_count);
    for (std::uint32_t i = 0; i < r.link_count; ++i) {
      const auto& l = index.links[link_at++];
      w.fixed64(l.high);
      w.fixed64(l.low);
    }
  }
  w.fixed32(crc32c(std::as_bytes(std::span(out))));
  return out;
}

result<segment_index> decode_segment_index(std::span<const std::byte> file) {
  if (file.size() < crc_bytes + 5) return corrupt("file too short");
  const auto body = file.first(file.size() - crc_bytes);
  reader crc_reader(file.subspan(body.size()));
  if (crc_reader.fixed32() != crc32c(body)) return corrupt("checksum mismatch");
  reader r(body);
  if (r.fixed32() != fmt_::index_magic) return corrupt("bad magic");
  if (r.u8() != fmt_::index_version) return corrupt("unknown version");
  segment_index index;
  index.segment = r.varint();
  const std::size_t strings = r.count();
  index.strings.reserve(strings + 1);
  for (std::size_t i = 0; i < strings && !r.failed(); ++i) index.strings.push_back(r.text());
  const std::size_t keys = r.count();
  for (std::size_t i = 0; i < keys && !r.failed(); ++i) index.tag_keys.push_back(r.text());
  const std::size_t values = r.count(2);
  for (std::size_t i = 0; i < values && !r.failed(); ++i) {
    std::string k = r.text();
    index.tag_values.emplace_back(std::move(k), r.text());
  }
  constexpr std::size_t min_record_bytes = 24;
  const std::size_t records = r.count(min_record_bytes);
  index.records.reserve(records);
  const std::size_t spans = r.count(4);
  const std::size_t links = r.count(16);
  index.spans.reserve(spans);
  index.links.reserve(links);
  std::uint64_t offset = 0;
  const auto string_ok = [&](std::uint32_t id) { return id < index.strings.size(); };
  for (std::size_t i = 0; i < records && !r.failed(); ++i) {
    segment_index::record_entry e;
    offset += r.varint();
    e.offset = offset;
    e.ingest_ms = r.zigzag();
    e.trace_id.high = r.fixed64();
    e.trace_id.low = r.fixed64();
    e.bytes = r.varint();
    e.root_start_us = r.zigzag();
    e.min_start_us = r.zigzag();
    e.span_count = static_cast<std::uint32_t>(r.count(4));
    for (std::uint32_t s = 0; s < e.span_count && !r.failed(); ++s) {
      segment_index::span_entry k;
      k.service = r.varint32();
      k.name = r.varint32();
      k.remote = r.varint32();
      k.duration_us = r.varint32();
      if (!string_ok(k.service) || !string_ok(k.name) || !string_ok(k.remote))
        return corrupt("string index out of range");
      index.spans.push_back(k);
    }
    e.link_count = static_cast<std::uint32_t>(r.count(16));
    for (std::uint32_t l = 0; l < e.link_count && !r.failed(); ++l) {
      id128 id;
      id.high = r.fixed64();
      id.low = r.fixed64();
      index.links.push_back(id);
    }
    index.records.push_back(e);
  }
  if (r.failed()) return corrupt("truncated");
  if (index.spans.size() != spans || index.links.size() != links) return corrupt("bad counts");
  if (!r.at_end()) return corrupt("trailing bytes");
  return index;
}

}  // namespace outrider::tracing::detail
