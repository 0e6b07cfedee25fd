// The byte-level primitives of the span store's encodings (span records and
// per-segment index files; docs/formats/span-store.md): one byte, LEB128
// varints, zigzag-encoded signed integers, little-endian fixed32/fixed64 and
// varint-length-prefixed text.
//
// byte_reader never reads past its input: the first short or malformed field
// makes every later read return a zero value and failed() true, so decoders
// check once at the end (and before loops bounded by decoded counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace outrider::tracing::detail {

inline constexpr unsigned varint_payload_bits = 7;
inline constexpr std::uint8_t varint_mask = 0x7f;
inline constexpr std::uint8_t varint_more = 0x80;
inline constexpr unsigned max_varint_shift = 63;

class byte_writer {
 public:
  explicit byte_writer(std::string& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(std::uint64_t v) {
    while (v >= varint_more) {
      out_.push_back(static_cast<char>((v & varint_mask) | varint_more));
      v >>= varint_payload_bits;
    }
    out_.push_back(static_cast<char>(v));
  }
  void zigzag(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^
           static_cast<std::uint64_t>(v >> max_varint_shift));
  }
  void fixed32(std::uint32_t v) {
    char buf[4];
    for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(buf, sizeof buf);
  }
  void fixed64(std::uint64_t v) {
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(buf, sizeof buf);
  }
  void text(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 protected:
  std::string& out_;
};

class byte_reader {
 public:
  explicit byte_reader(std::span<const std::byte> in)
      : p_(in.data()), end_(in.data() + in.size()) {}

  bool failed() const noexcept { return failed_; }
  bool at_end() const noexcept { return p_ == end_; }

  std::uint8_t u8() {
    if (p_ == end_) return fail<std::uint8_t>();
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift <= max_varint_shift; shift += varint_payload_bits) {
      if (p_ == end_) return fail<std::uint64_t>();
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & varint_mask) << shift;
      if ((b & varint_more) == 0) return v;
    }
    return fail<std::uint64_t>();
  }
  std::uint32_t varint32() {
    const std::uint64_t v = varint();
    if (v > 0xffffffffU) return fail<std::uint32_t>();
    return static_cast<std::uint32_t>(v);
  }
  std::int64_t zigzag() {
    const std::uint64_t u = varint();
    return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
  }
  std::uint32_t fixed32() {
    if (end_ - p_ < 4) return fail<std::uint32_t>();
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(p_[i])} << (8 * i);
    p_ += 4;
    return v;
  }
  std::uint64_t fixed64() {
    if (end_ - p_ < 8) return fail<std::uint64_t>();
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(p_[i])} << (8 * i);
    p_ += 8;
    return v;
  }
  std::string text() {
    const std::uint64_t n = varint();
    if (failed_ || n > static_cast<std::uint64_t>(end_ - p_)) return fail<std::string>();
    std::string s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  // A count of items each at least `min_bytes` long (bounds allocations on bad input).
  std::size_t count(std::size_t min_bytes = 1) {
    const std::uint64_t n = varint();
    if (failed_ || n > static_cast<std::uint64_t>(end_ - p_) / min_bytes)
      return fail<std::size_t>();
    return static_cast<std::size_t>(n);
  }

 protected:
  template <class T>
  T fail() {
    failed_ = true;
    p_ = end_;
    return T{};
  }

  const std::byte* p_;
  const std::byte* end_;
  bool failed_ = false;
};

}  // namespace outrider::tracing::detail
