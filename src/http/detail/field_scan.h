// field_scan: what detail::simple_request and detail::simple_response share: the
// character classes (Beast's), the 8-bytes-a-step text scan and the scan of a field
// block with the framing fields the scans must understand (internal to the http module).
//
// A scan only takes what Beast's parser would take the same way; anything it is not
// sure of makes the caller decline, and Beast then parses the message (see
// docs/ARCHITECTURE.md, "Where we do not use the library's path").
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "http/message.h"

namespace outrider::http::detail::field_scan {

// RFC 9110 tchar (Beast's is_token table).
inline constexpr auto token_chars = [] {
  std::array<bool, 256> t{};
  for (unsigned char c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (unsigned char c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (unsigned char c = '0'; c <= '9'; ++c) t[c] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

// What Beast's parse_token_to_eol takes as part of a value or reason: anything but
// the controls other than HTAB, and DEL (bytes from 0x80 are obs-text).
inline constexpr auto text_chars = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 256; ++c) t[static_cast<std::size_t>(c)] = c != 0x7f;
  t['\t'] = true;
  return t;
}();

inline bool is_token(char c) {
  return token_chars[static_cast<unsigned char>(c)];
}
inline bool is_text(char c) {
  return text_chars[static_cast<unsigned char>(c)];
}
inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The first byte at or after `p` that is not text (or `end`): 8 bytes a step, the
// lowest flagged byte of a step found at once (a HTAB among them is text: on after it).
[[gnu::always_inline]] inline const char* skip_text(const char* p, const char* end) {
  static_assert(std::endian::native == std::endian::little, "the first byte is the lowest");
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  while (end - p >= 8) {
    std::uint64_t x = 0;
    std::memcpy(&x, p, 8);
    // Bytes < 0x20 and bytes == 0x7f: exact for the lowest flagged byte (a borrow
    // only flags bytes above a flagged one). Little-endian: the lowest is the first.
    const std::uint64_t below_space = (x - ones * 0x20) & ~x & highs;
    const std::uint64_t y = x ^ (ones * 0x7f);
    const std::uint64_t del = (y - ones) & ~y & highs;
    const std::uint64_t flagged = below_space | del;
    if (flagged == 0) {
      p += 8;
      continue;
    }
    p += std::countr_zero(flagged) / 8;
    if (*p != '\t') return p;
    ++p;
  }
  while (p < end && is_text(*p)) ++p;
  return p;
}

// Whose fields: a request's Expect is declined too (100-continue is Beast's path).
enum class message_kind : std::uint8_t { request, response };

// The fields whose meaning a scan must know (and which of them it declines).
enum class framing : std::uint8_t { none, content_length, connection, decline };

inline framing framing_of(std::string_view name, message_kind kind) {
  switch (name.size()) {  // one comparison at most
    case 6:
      return kind == message_kind::request && iequals(name, "Expect") ? framing::decline
                                                                      : framing::none;
    case 7: return iequals(name, "Upgrade") ? framing::decline : framing::none;
    case 10: return iequals(name, "Connection") ? framing::connection : framing::none;
    case 14: return iequals(name, "Content-Length") ? framing::content_length : framing::none;
    case 16: return iequals(name, "Proxy-Connection") ? framing::decline : framing::none;
    case 17: return iequals(name, "Transfer-Encoding") ? framing::decline : framing::none;
    default: return framing::none;
  }
}

// Fields a scan keeps before it adds them (a message with more is declined).
inline constexpr std::size_t max_fields = 32;

// A scanned field block: the fields as views into the scanned bytes, added to the
// message only once the whole message is known to be taken (nothing to undo).
struct field_block {
  struct piece {
    const char* data;
    std::size_t size;
  };
  // Left uninitialized: zeroing 32 pairs of views cost more than the scan of a field.
  piece kept[2 * max_fields];  // NOLINT(cppcoreguidelines-pro-type-member-init)
  std::size_t count = 0;
  bool has_length = false;
  std::uint64_t length = 0;
  bool close = false;

  void add_to(fields& out) const {
    for (std::size_t i = 0; i < count; ++i) {
      out.add_parsed(std::string_view(kept[2 * i].data, kept[2 * i].size),
                     std::string_view(kept[2 * i + 1].data, kept[2 * i + 1].size));
    }
  }
};

// Scans `field-name ":" OWS field-value OWS CRLF` lines (none followed by an obs-fold)
// up to and with the empty line's CRLF. Returns the position after it, or nullptr to
// decline: a byte out of place, a declined framing field, a second Content-Length or
// one that is not 1-18 plain digits, a Connection other than "keep-alive" or "close",
// more than max_fields fields, or the block not ending within [p, end).
// Always inlined: each scan calls it once, and a call (the block through a pointer)
// costs ~140 instructions per proxied request (callgrind).
[[gnu::always_inline]] inline const char* scan_fields(const char* p, const char* end,
                                                      message_kind kind, field_block& out) {
  for (;;) {
    if (end - p < 2) return nullptr;
    if (p[0] == '\r') {
      if (p[1] != '\n') return nullptr;
      return p + 2;
    }
    const char* name = p;
    while (end - p >= 4 && is_token(p[0]) && is_token(p[1]) && is_token(p[2]) && is_token(p[3])) {
      p += 4;
    }
    while (p < end && is_token(*p)) ++p;
    if (p == name || p == end || *p != ':') return nullptr;
    const std::string_view field_name(name, static_cast<std::size_t>(p - name));
    ++p;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* value = p;
    p = skip_text(p, end);
    if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') {
      return nullptr;
    }
    const char* value_end = p;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    const std::string_view field_value(value, static_cast<std::size_t>(value_end - value));
    p += 2;
    switch (framing_of(field_name, kind)) {
      case framing::none: break;
      case framing::decline: return nullptr;
      case framing::content_length:
        if (out.has_length || field_value.empty() || field_value.size() > 18) return nullptr;
        for (char c : field_value) {
          if (!is_digit(c)) return nullptr;
          out.length = out.length * 10 + static_cast<std::uint64_t>(c - '0');
        }
        out.has_length = true;
        break;
      case framing::connection:
        if (iequals(field_value, "close")) {
          out.close = true;
        } else if (!iequals(field_value, "keep-alive")) {
          return nullptr;
        }
        break;
    }
    if (out.count == max_fields) return nullptr;
    out.kept[2 * out.count] = {field_name.data(), field_name.size()};
    out.kept[2 * out.count + 1] = {field_value.data(), field_value.size()};
    ++out.count;
  }
}

}  // namespace outrider::http::detail::field_scan
