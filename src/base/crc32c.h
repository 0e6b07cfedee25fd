// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of the
// durable log's records and segment headers (storage) and of the broker's wire
// frames (broker_client). Lives in base so both can use it.
//
// On x86-64 CPUs with SSE4.2 it uses the crc32 instruction (chosen once at run
// time); elsewhere a slicing-by-8 table. Both give identical results. Why it is
// hand-written rather than taken from a library: docs/formats/log.md.
// Thread-safe, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace outrider {

// The CRC-32C of `data` continuing from `crc` (the value returned for the
// preceding bytes; 0 for the first chunk). crc32c_extend(crc32c(a), b) == crc32c(a ++ b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept;
inline std::uint32_t crc32c(std::span<const std::byte> data) noexcept {
  return crc32c_extend(0, data);
}

// The portable implementation, exposed so tests can compare it with the hardware one.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept;
// True when crc32c_extend uses the SSE4.2 instruction on this CPU.
bool crc32c_hardware_accelerated() noexcept;

// Stored checksums are masked (LevelDB's scheme): the CRC of a byte string that
// itself contains CRCs is otherwise weak, so rotate and add a constant.
inline constexpr std::uint32_t crc32c_mask_delta = 0xa282ead8U;
inline constexpr std::uint32_t crc32c_mask(std::uint32_t crc) noexcept {
  return ((crc >> 15) | (crc << 17)) + crc32c_mask_delta;
}
inline constexpr std::uint32_t crc32c_unmask(std::uint32_t masked) noexcept {
  const std::uint32_t rotated = masked - crc32c_mask_delta;
  return (rotated >> 17) | (rotated << 15);
}

}  // namespace outrider
