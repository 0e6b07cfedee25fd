// On-disk format of the span store (docs/formats/span-store.md). The store
// keeps spans in a storage::log (docs/formats/log.md), which gives every record
// a CRC-32C and its own framing version; these constants describe the payload.
#pragma once

#include <cstdint>

namespace outrider::tracing::span_store_format {

// Log record type of a span record (one trace's spans from one ingest batch).
inline constexpr std::uint8_t record_type_spans = 1;
// First byte of every span record payload.
inline constexpr std::uint8_t version = 1;
// Subdirectory of the data dir holding the log segments.
inline constexpr const char* log_subdir = "spans";

// Subdirectory of the data dir holding one index file per finished log segment,
// named by the segment number (20 decimal digits) and this suffix.
inline constexpr const char* index_subdir = "index";
inline constexpr const char* index_suffix = ".idx";
// First 4 bytes of an index file ("SIDX" little-endian) and its format version.
inline constexpr std::uint32_t index_magic = 0x58444953;
inline constexpr std::uint8_t index_version = 1;

// Attribute value type tags.
inline constexpr std::uint8_t value_empty = 0;
inline constexpr std::uint8_t value_string = 1;
inline constexpr std::uint8_t value_bool = 2;
inline constexpr std::uint8_t value_int = 3;
inline constexpr std::uint8_t value_double = 4;
inline constexpr std::uint8_t value_array = 5;
inline constexpr std::uint8_t value_kvlist = 6;
inline constexpr std::uint8_t value_bytes = 7;

// Span flag bits.
inline constexpr std::uint8_t flag_debug = 1;
inline constexpr std::uint8_t flag_shared = 2;

}  // namespace outrider::tracing::span_store_format
