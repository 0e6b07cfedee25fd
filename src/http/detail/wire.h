// Writing a message's head into a string: the size is counted first, the string
// grows once, and each piece is copied in place (no append's capacity check and
// possible growth per piece), and the CR/LF check of a field runs 8 bytes a step.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace outrider::http::detail {

// Whether `s` holds a CR or an LF (a field that would split the message). Eight
// bytes a step; the last step (or two 4-byte ones for 4 to 7 bytes) overlaps the
// one before instead of a byte loop.
inline bool has_crlf(std::string_view s) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto crlf_in = [](std::uint64_t v) {
    auto zero_byte = [](std::uint64_t x) { return ((x - ones) & ~x & highs) != 0; };
    return zero_byte(v ^ (ones * '\r')) || zero_byte(v ^ (ones * '\n'));
  };
  const char* p = s.data();
  const std::size_t n = s.size();
  if (n >= 8) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&v, p + i, 8);
      if (crlf_in(v)) return true;
    }
    std::memcpy(&v, p + n - 8, 8);
    return crlf_in(v);
  }
  if (n >= 4) {
    std::uint32_t a = 0;
    std::uint32_t b = 0;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return crlf_in((std::uint64_t{a} << 32) | b);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\r' || p[i] == '\n') return true;
  }
  return false;
}

// Copies pieces into memory reserved beforehand: `out.size()` grows by `bytes`
// once, then put() fills it; the caller counts exactly what it puts.
class wire_writer {
 public:
  wire_writer(std::string& out, std::size_t bytes) {
    const std::size_t start = out.size();
    out.resize(start + bytes);
    p_ = out.data() + start;
    end_ = p_ + bytes;
  }
  void put(std::string_view s) noexcept {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void put(char c) noexcept { *p_++ = c; }
  // The field line "name: value\r\n".
  void field(std::string_view name, std::string_view value) noexcept {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  // Everything counted was written (a checked invariant in tests).
  bool full() const noexcept { return p_ == end_; }

 private:
  char* p_;
  char* end_;
};

// The size of field(name, value)'s line.
constexpr std::size_t field_bytes(std::string_view name, std::string_view value) noexcept {
  return name.size() + 2 + value.size() + 2;
}

}  // namespace outrider::http::detail
