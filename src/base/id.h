// 128-bit identifiers (message ids, job ids, trace ids).
//
// Text forms:
//  - to_string(): 26 characters of Crockford base32, lower case ([0-9a-hjkmnp-tv-z]),
//    URL-safe and case-insensitive on parse; sorts like the numeric value.
//  - to_hex(): 32 lower-case hex digits (W3C trace ids).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/random.h"

namespace outrider {

struct id128 {
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  static constexpr std::size_t text_size = 26;
  static constexpr std::size_t hex_size = 32;

  // 128 random bits.
  static id128 random(random_source& rng = thread_random());
  // 48 bits of milliseconds since the Unix epoch followed by 80 random bits, so
  // ids made later sort later (like ULID); good for log locality.
  static id128 time_ordered(wall_time now, random_source& rng = thread_random());

  bool is_zero() const noexcept { return high == 0 && low == 0; }
  std::string to_string() const;
  // The to_string() text without an allocation.
  std::array<char, text_size> to_chars() const noexcept;
  std::string to_hex() const;

  static std::optional<id128> parse(std::string_view text);
  static std::optional<id128> parse_hex(std::string_view hex);

  friend auto operator<=>(const id128&, const id128&) = default;
};

}  // namespace outrider

template <>
struct std::hash<outrider::id128> {
  std::size_t operator()(const outrider::id128& id) const noexcept {
    return static_cast<std::size_t>(id.high ^ (id.low * 0x9e3779b97f4a7c15ULL));
  }
};
