#include "tracing/detail/segment_index.h"

#include <cstring>

#include "base/crc32c.h"
#include "tracing/detail/byte_codec.h"
#include "tracing/span_store_format.h"

namespace outrider::tracing::detail {
namespace {

namespace fmt_ = span_store_format;
constexpr std::size_t crc_bytes = 4;

using writer = byte_writer;
using reader = byte_reader;

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
