#include "base/json_text.h"

#include <cstdint>
#include <cstring>

namespace outrider {
namespace {

// True for bytes JSON strings must escape: quote, backslash, control characters.
constexpr bool needs_escape(unsigned char c) noexcept {
  return c < 0x20 || c == '"' || c == '\\';
}

// Whether any of the 8 bytes of `w` needs more than a copy: escaping (needs_escape) or a UTF-8
// check (>= 0x80). Per byte b: b - 0x20 borrows into the top bit only when b < 0x20, and a byte
// equal to the quote or backslash is zero after the xor (the same borrow test); the top bit of b
// itself flags >= 0x80. Exact as a whole (which byte it is, the byte loop finds).
constexpr bool any_special(std::uint64_t w) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t high = 0x8080808080808080ULL;
  const std::uint64_t quote = w ^ (ones * '"');
  const std::uint64_t backslash = w ^ (ones * '\\');
  const std::uint64_t below = (w - ones * 0x20) & ~w;
  const std::uint64_t is_quote = (quote - ones) & ~quote;
  const std::uint64_t is_backslash = (backslash - ones) & ~backslash;
  return ((w | below | is_quote | is_backslash) & high) != 0;
}

// The end of the run from `p` that needs no more than a copy (the first byte that needs escaping
// or a UTF-8 check, else `end`): 8 bytes a step, the last 8 as one step (overlapping what was
// checked) when fewer are left, then byte by byte.
const unsigned char* plain_run_end(const unsigned char* p,
                                   const unsigned char* const end) noexcept {
  const auto* const start = p;
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    if (any_special(w)) break;
    p += 8;
  }
  if (p != end && end - p < 8 && end - start >= 8) {
    std::uint64_t w;
    std::memcpy(&w, end - 8, sizeof w);
    if (!any_special(w)) return end;
  }
  while (p < end && *p < 0x80 && !needs_escape(*p)) ++p;
  return p;
}

// The length of the well-formed UTF-8 sequence (RFC 3629) that starts with a byte
// >= 0x80 at `p`: 2 to 4, or 0 when it is not one (a continuation byte first,
// 0xc0/0xc1 or 0xf5..0xff, an overlong form, a surrogate, past U+10FFFF, cut short).
int utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char c = *p;
  int len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;  // no overlong forms
    if (c == 0xed) hi = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;  // no overlong forms
    if (c == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (end - p < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (int i = 2; i < len; ++i) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return len;
}

}  // namespace

bool is_plain_json_text(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  return plain_run_end(p, end) == end;
}

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const int len = utf8_sequence_length(p, end);
    if (len == 0) return false;
    p += len;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  // Copy runs that need no escaping in bulk; escape the bytes between them.
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const auto* run = p;
    p = plain_run_end(p, end);
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    if (*p >= 0x80) {
      // A well-formed sequence is copied; a byte that starts none becomes U+FFFD, so the
      // output is always valid JSON (RFC 8259 text is UTF-8).
      if (const int len = utf8_sequence_length(p, end); len > 0) {
        out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
        p += len;
      } else {
        out += "\xef\xbf\xbd";
        ++p;
      }
      continue;
    }
    const unsigned char c = *p++;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.push_back('"');
}

}  // namespace outrider
