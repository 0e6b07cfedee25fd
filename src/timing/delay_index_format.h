// On-disk format of the delay index (disk_scheduler). Prose: docs/formats/delay-index.md.
//
// All integers are little-endian. Checksums are CRC-32 (zlib's crc32, polynomial 0xEDB88320).
//
// A directory holds:
//   bucket-<start_ns>.dly   one per due-time range [start_ns, start_ns + bucket_width_ns):
//                           a sequence of blocks, each
//                             u32 magic = block_magic, u8 version, u8 0, u16 0,
//                             u32 entry_count, u32 crc (over header bytes [0, 12) + payload),
//                             entry_count x { i64 due_ns, u64 ref }.
//   coarse-<start_ns>.dly   coarse tier only (disk_scheduler_options::coarse_width_ns): the same
//                           blocks for [start_ns, start_ns + coarse_width_ns); scratch files,
//                           never named by a checkpoint, removed on open.
//   CHECKPOINT              the last checkpoint (replaced atomically by rename):
//                             u32 magic = checkpoint_magic, u8 version, u8 0, u16 0,
//                             u64 high_water, i64 fired_through_ns, i64 bucket_width_ns,
//                             u64 bucket_count,
//                             bucket_count x { i64 start_ns, u64 length, u64 entry_count },
//                             u32 crc (over every preceding byte).
//   CHECKPOINT.tmp          a checkpoint being written; removed on open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outrider::timing::delay_index_format {

inline constexpr std::uint8_t version = 1;

inline constexpr std::uint32_t block_magic = 0x4B4C4244;  // "DBLK"
inline constexpr std::size_t block_header_size = 16;
inline constexpr std::size_t block_crc_offset = 12;
inline constexpr std::size_t entry_size = 16;
inline constexpr std::uint32_t max_entries_per_block = 1U << 16;

inline constexpr std::uint32_t checkpoint_magic = 0x50435844;  // "DXCP"
inline constexpr std::size_t checkpoint_header_size = 40;
inline constexpr std::size_t checkpoint_bucket_size = 24;
inline constexpr std::size_t checkpoint_crc_size = 4;

inline constexpr std::string_view checkpoint_name = "CHECKPOINT";
inline constexpr std::string_view checkpoint_temp_name = "CHECKPOINT.tmp";
inline constexpr std::string_view bucket_prefix = "bucket-";
inline constexpr std::string_view bucket_suffix = ".dly";
inline constexpr std::string_view coarse_prefix = "coarse-";

}  // namespace outrider::timing::delay_index_format
