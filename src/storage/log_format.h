// On-disk format of the durable log (prose, rationale and recovery rules:
// docs/formats/log.md). All integers are little endian.
//
// A log is a directory of segment files named <20-digit decimal segment number>.log.
// Each segment is a segment header followed by records packed back to back:
//
//   segment header (20 bytes)
//     0  u32  magic                 segment_magic ("ORLG" read as bytes)
//     4  u8   format version        format_version
//     5  u8[3] reserved             zero
//     8  u64  segment number        equals the number in the file name
//    16  u32  masked CRC-32C        of bytes [0, 16)
//
//   record (10-byte header + payload)
//     0  u32  masked CRC-32C        of bytes [4, 10) followed by the payload
//     4  u32  payload length
//     8  u8   format version        format_version
//     9  u8   record type           chosen by the caller
//    10  ...  payload
//
// A position names a record: (segment number << offset_bits) | byte offset in the segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outrider::storage::log_format {

inline constexpr std::uint32_t segment_magic = 0x474c524fU;  // bytes 'O' 'R' 'L' 'G'
inline constexpr std::uint8_t format_version = 1;

inline constexpr std::size_t segment_header_size = 20;
inline constexpr std::size_t segment_magic_offset = 0;
inline constexpr std::size_t segment_version_offset = 4;
inline constexpr std::size_t segment_number_offset = 8;
inline constexpr std::size_t segment_crc_offset = 16;

inline constexpr std::size_t record_header_size = 10;
inline constexpr std::size_t record_crc_offset = 0;
inline constexpr std::size_t record_length_offset = 4;
inline constexpr std::size_t record_version_offset = 8;
inline constexpr std::size_t record_type_offset = 9;
// The CRC covers the header from here on, then the payload.
inline constexpr std::size_t record_crc_covered_offset = record_length_offset;

inline constexpr unsigned offset_bits = 40;
inline constexpr std::uint64_t offset_mask = (std::uint64_t{1} << offset_bits) - 1;
inline constexpr std::uint64_t max_segment_number = (std::uint64_t{1} << (64 - offset_bits)) - 1;
inline constexpr std::uint64_t first_segment_number = 1;

inline constexpr std::string_view segment_suffix = ".log";
inline constexpr std::string_view temp_suffix = ".tmp";  // a segment being created
inline constexpr std::size_t segment_name_digits = 20;

}  // namespace outrider::storage::log_format
