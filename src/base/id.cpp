#include "base/id.h"

#include <bit>
#include <cstring>

namespace outrider {
namespace {

constexpr char base32_digits[] = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr char hex_digits[] = "0123456789abcdef";

int base32_value(char c) {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  switch (c) {  // Crockford aliases
    case 'o': return 0;
    case 'i':
    case 'l': return 1;
    default: break;
  }
  for (int i = 0; i < 32; ++i) {
    if (base32_digits[i] == c) return i;
  }
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

id128 id128::random(random_source& rng) {
  return id128{rng.next_u64(), rng.next_u64()};
}

id128 id128::time_ordered(wall_time now, random_source& rng) {
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  ms &= (std::uint64_t{1} << 48) - 1;
  std::uint64_t r1 = rng.next_u64();
  std::uint64_t r2 = rng.next_u64();
  return id128{(ms << 16) | (r1 >> 48), r2};
}

namespace {

// Eight digits of Crockford base32 for the 40 bits of `v` (v < 2^40), as 8
// bytes to store as they are (the most significant digit at the lowest
// address), without a loop or a table: the 5-bit groups are spread one per
// byte, then all eight turned into their letters at once. The alphabet skips
// i, l, o and u: a digit d is '0' + d, plus 39 from 10 (a..h), plus one more
// from 18 (past i), 20 (l), 22 (o) and 27 (u).
std::uint64_t base32_8(std::uint64_t v) noexcept {
  static_assert(std::endian::native == std::endian::little);
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  std::uint64_t x = ((v >> 20) << 32) | (v & 0xfffffULL);                // 2 x 20 bits
  x = ((x & 0x000ffc00000ffc00ULL) << 6) | (x & 0x000003ff000003ffULL);  // 4 x 10
  x = ((x & 0x03e003e003e003e0ULL) << 3) | (x & 0x001f001f001f001fULL);  // 8 x 5
  // 1 in each byte whose digit is at least k (digits < 32: no carry between bytes).
  const auto at_least = [x](std::uint64_t k) { return ((x + (0x80 - k) * ones) >> 7) & ones; };
  x += '0' * ones + at_least(10) * 39 + at_least(18) + at_least(20) + at_least(22) + at_least(27);
  return __builtin_bswap64(x);
}

}  // namespace

std::array<char, id128::text_size> id128::to_chars() const noexcept {
  // 26 digits * 5 bits = 130 bits: the top digit carries the top 3 bits.
  // Digits 2..25 are three runs of 40 bits (bits 80..119, 40..79, 0..39).
  static_assert(text_size == 26);
  std::array<char, text_size> out;
  out[0] = base32_digits[high >> 61];
  out[1] = base32_digits[(high >> 56) & 31];
  constexpr std::uint64_t bits40 = (std::uint64_t{1} << 40) - 1;
  const std::uint64_t runs[3] = {base32_8((high >> 16) & bits40),
                                 base32_8((low >> 40) | ((high & 0xffff) << 24)),
                                 base32_8(low & bits40)};
  std::memcpy(out.data() + 2, runs, sizeof runs);
  return out;
}

std::string id128::to_string() const {
  const auto text = to_chars();
  return std::string(text.data(), text.size());
}

std::optional<id128> id128::parse(std::string_view text) {
  if (text.size() != text_size) return std::nullopt;
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  for (std::size_t i = 0; i < text_size; ++i) {
    int v = base32_value(text[i]);
    if (v < 0) return std::nullopt;
    if (i == 0 && v > 7) return std::nullopt;  // would overflow 128 bits
    hi = (hi << 5) | (lo >> 59);
    lo = (lo << 5) | static_cast<std::uint64_t>(v);
  }
  return id128{hi, lo};
}

std::string id128::to_hex() const {
  std::string out(hex_size, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<std::size_t>(15 - i)] = hex_digits[(high >> (4 * i)) & 15];
    out[static_cast<std::size_t>(31 - i)] = hex_digits[(low >> (4 * i)) & 15];
  }
  return out;
}

std::optional<id128> id128::parse_hex(std::string_view hex) {
  if (hex.size() != hex_size) return std::nullopt;
  id128 id;
  for (std::size_t i = 0; i < hex_size; ++i) {
    int v = hex_value(hex[i]);
    if (v < 0) return std::nullopt;
    auto& half = i < 16 ? id.high : id.low;
    half = (half << 4) | static_cast<std::uint64_t>(v);
  }
  return id;
}

}  // namespace outrider
