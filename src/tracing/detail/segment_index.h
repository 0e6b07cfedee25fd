// The span store's segment index files (docs/formats/span-store.md, "Segment
// index files"): what the in-memory indexes need of one finished log segment,
// so that open() reads a few bytes per span instead of decoding every record.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/id.h"
#include "base/result.h"

namespace outrider::tracing::detail {

struct segment_index {
  struct span_entry {
    std::uint32_t service = 0;  // indexes into `strings` (0 = "")
    std::uint32_t name = 0;
    std::uint32_t remote = 0;
    std::uint32_t duration_us = 0;  // saturated
  };
  struct record_entry {
    std::uint64_t offset = 0;  // of the record in the segment
    std::int64_t ingest_ms = 0;
    id128 trace_id;
    std::uint64_t bytes = 0;         // record size in the log (header and payload)
    std::int64_t root_start_us = 0;  // the first root span's start (0: no root)
    std::int64_t min_start_us = 0;   // the earliest start (0: none)
    std::uint32_t span_count = 0;    // its spans are the next span_count of `spans`
    std::uint32_t link_count = 0;    // its link targets are the next link_count of `links`
  };
  std::uint64_t segment = 0;
  std::vector<std::string> strings{""};  // lower-cased names; [0] is ""
  std::vector<record_entry> records;     // in log order
  std::vector<span_entry> spans;
  std::vector<id128> links;  // other traces a span of the record links into
  std::vector<std::string> tag_keys;
  std::vector<std::pair<std::string, std::string>> tag_values;  // (key, value)
};

// The file's bytes (with its CRC-32C).
std::string encode_segment_index(const segment_index& index);
// Errors: data_corruption for a bad magic, version, checksum or length.
result<segment_index> decode_segment_index(std::span<const std::byte> file);

}  // namespace outrider::tracing::detail
