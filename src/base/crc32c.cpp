#include "base/crc32c.h"

#include <array>
#include <bit>
#include <cstring>

namespace outrider {
namespace {

constexpr std::uint32_t reflected_polynomial = 0x82f63b78U;
constexpr std::size_t slices = 8;

using table_t = std::array<std::array<std::uint32_t, 256>, slices>;

constexpr table_t make_tables() {
  table_t t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1U) ? reflected_polynomial : 0U);
    t[0][i] = crc;
  }
  for (std::size_t s = 1; s < slices; ++s) {
    for (std::uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr table_t tables = make_tables();

std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  static_assert(std::endian::native == std::endian::little, "the log format assumes little endian");
  return v;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t crc,
                                                             const unsigned char* p,
                                                             std::size_t n) noexcept {
  std::uint64_t c = ~crc;
  while (n >= sizeof(std::uint64_t)) {
    c = __builtin_ia32_crc32di(c, load_le64(p));
    p += sizeof(std::uint64_t);
    n -= sizeof(std::uint64_t);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p++);
    --n;
  }
  return ~c32;
}

bool cpu_has_sse42() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#else
bool cpu_has_sse42() noexcept {
  return false;
}
#endif

const bool use_hardware = cpu_has_sse42();

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::uint32_t c = ~crc;
  while (n >= slices) {
    const std::uint64_t v = load_le64(p) ^ c;
    c = tables[7][v & 0xff] ^ tables[6][(v >> 8) & 0xff] ^ tables[5][(v >> 16) & 0xff] ^
        tables[4][(v >> 24) & 0xff] ^ tables[3][(v >> 32) & 0xff] ^ tables[2][(v >> 40) & 0xff] ^
        tables[1][(v >> 48) & 0xff] ^ tables[0][v >> 56];
    p += slices;
    n -= slices;
  }
  while (n > 0) {
    c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xff];
    --n;
  }
  return ~c;
}

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
#if defined(__x86_64__)
  if (use_hardware) {
    return crc32c_sse42(crc, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
#endif
  return crc32c_extend_portable(crc, data);
}

bool crc32c_hardware_accelerated() noexcept {
  return use_hardware;
}

}  // namespace outrider
