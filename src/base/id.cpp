#include "base/id.h"

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

std::array<char, id128::text_size> id128::to_chars() const noexcept {
  // 26 digits * 5 bits = 130 bits: the top digit carries the top 3 bits.
  std::array<char, text_size> out{};
  std::uint64_t hi = high;
  std::uint64_t lo = low;
  for (int i = static_cast<int>(text_size) - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = base32_digits[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
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
