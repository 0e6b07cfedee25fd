#include "http/detail/simple_response.h"

#include <array>
#include <bit>
#include <cstring>

namespace outrider::http::detail {
namespace {

// RFC 9110 tchar (Beast's is_token table).
constexpr auto token_chars = [] {
  std::array<bool, 256> t{};
  for (unsigned char c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (unsigned char c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (unsigned char c = '0'; c <= '9'; ++c) t[c] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

// What Beast's parse_token_to_eol takes as part of a value or reason: anything but
// the controls other than HTAB, and DEL (bytes from 0x80 are obs-text).
constexpr auto text_chars = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 256; ++c) t[static_cast<std::size_t>(c)] = c != 0x7f;
  t['\t'] = true;
  return t;
}();

bool is_token(char c) {
  return token_chars[static_cast<unsigned char>(c)];
}
bool is_text(char c) {
  return text_chars[static_cast<unsigned char>(c)];
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The first byte at or after `p` that is not text (or `end`): 8 bytes a step, the
// lowest flagged byte of a step found at once (a HTAB among them is text: on after it).
const char* skip_text(const char* p, const char* end) {
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

// The fields whose meaning the scan must know (and which of them it declines).
enum class framing : std::uint8_t { none, content_length, connection, decline };

framing framing_of(std::string_view name) {
  switch (name.size()) {  // one comparison at most
    case 7: return iequals(name, "Upgrade") ? framing::decline : framing::none;
    case 10: return iequals(name, "Connection") ? framing::connection : framing::none;
    case 14: return iequals(name, "Content-Length") ? framing::content_length : framing::none;
    case 16: return iequals(name, "Proxy-Connection") ? framing::decline : framing::none;
    case 17: return iequals(name, "Transfer-Encoding") ? framing::decline : framing::none;
    default: return framing::none;
  }
}

// Fields the scan keeps before it adds them (an answer with more is declined).
constexpr std::size_t max_fields = 32;

}  // namespace

bool parse_simple_response(std::string_view data, const simple_response_limits& limits,
                           response& out, bool& keep_alive) {
  const char* p = data.data();
  const char* const end = p + data.size();
  // "HTTP/1.1 " 3DIGIT SP reason CRLF
  constexpr std::string_view version = "HTTP/1.1 ";
  if (data.size() < version.size() + 4 || data.substr(0, version.size()) != version) return false;
  p += version.size();
  if (!is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) || p[3] != ' ') return false;
  const int status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  if (status < 200 || status > 599 || status == 204 || status == 304) return false;
  p += 4;
  p = skip_text(p, end);
  if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return false;
  p += 2;

  // The fields are added once the whole message is known to be taken (nothing to undo).
  // (Left uninitialized: zeroing 32 pairs of views cost more than the scan of a field.)
  struct piece {
    const char* data;
    std::size_t size;
  };
  piece kept[2 * max_fields];  // NOLINT(cppcoreguidelines-pro-type-member-init)
  std::size_t count = 0;
  bool has_length = false;
  std::uint64_t length = 0;
  bool close = false;
  for (;;) {
    if (end - p < 2) return false;
    if (p[0] == '\r') {
      if (p[1] != '\n') return false;
      p += 2;
      break;
    }
    // field-name ":" OWS field-value OWS CRLF, not followed by an obs-fold
    const char* name = p;
    while (end - p >= 4 && is_token(p[0]) && is_token(p[1]) && is_token(p[2]) && is_token(p[3])) {
      p += 4;
    }
    while (p < end && is_token(*p)) ++p;
    if (p == name || p == end || *p != ':') return false;
    const std::string_view field_name(name, static_cast<std::size_t>(p - name));
    ++p;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* value = p;
    p = skip_text(p, end);
    if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') return false;
    const char* value_end = p;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    const std::string_view field_value(value, static_cast<std::size_t>(value_end - value));
    p += 2;
    switch (framing_of(field_name)) {
      case framing::none: break;
      case framing::decline: return false;
      case framing::content_length:
        if (has_length || field_value.empty() || field_value.size() > 18) return false;
        for (char c : field_value) {
          if (!is_digit(c)) return false;
          length = length * 10 + static_cast<std::uint64_t>(c - '0');
        }
        has_length = true;
        break;
      case framing::connection:
        if (iequals(field_value, "close")) {
          close = true;
        } else if (!iequals(field_value, "keep-alive")) {
          return false;
        }
        break;
    }
    if (count == max_fields) return false;
    kept[2 * count] = {field_name.data(), field_name.size()};
    kept[2 * count + 1] = {field_value.data(), field_value.size()};
    ++count;
  }
  const auto head = static_cast<std::size_t>(p - data.data());
  if (!has_length || head >= limits.header_limit || length > limits.body_limit ||
      (limits.stream_threshold != 0 && length > limits.stream_threshold) ||
      static_cast<std::uint64_t>(end - p) != length) {
    return false;
  }
  out.status = status;
  for (std::size_t i = 0; i < count; ++i) {
    out.headers.add_parsed(std::string_view(kept[2 * i].data, kept[2 * i].size),
                           std::string_view(kept[2 * i + 1].data, kept[2 * i + 1].size));
  }
  out.body.assign(p, static_cast<std::size_t>(length));
  keep_alive = !close;
  return true;
}

}  // namespace outrider::http::detail
