#include "http/detail/simple_request.h"

#include <array>
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

// What Beast's parse_token_to_eol takes as part of a value: anything but the controls
// other than HTAB, and DEL (bytes from 0x80 are obs-text).
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
// A request-target byte this scan takes: visible ASCII (Beast takes more; those
// requests go to Beast).
bool is_target(char c) {
  return c > 0x20 && c < 0x7f;
}

// The first byte at or after `p` that is not text (or `end`): 8 bytes a step while
// none of them is a control or DEL.
const char* skip_text(const char* p, const char* end) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  while (end - p >= 8) {
    std::uint64_t x = 0;
    std::memcpy(&x, p, 8);
    const std::uint64_t below_space = (x - ones * 0x20) & ~x & highs;  // a byte < 0x20
    const std::uint64_t y = x ^ (ones * 0x7f);
    const std::uint64_t del = (y - ones) & ~y & highs;  // a byte == 0x7f
    if ((below_space | del) != 0) break;
    p += 8;
  }
  while (p < end && is_text(*p)) ++p;
  return p;
}

// The fields whose meaning the scan must know (and which of them it declines).
enum class framing : std::uint8_t { none, content_length, connection, decline };

framing framing_of(std::string_view name) {
  switch (name.size()) {  // one comparison at most
    case 6: return iequals(name, "Expect") ? framing::decline : framing::none;
    case 7: return iequals(name, "Upgrade") ? framing::decline : framing::none;
    case 10: return iequals(name, "Connection") ? framing::connection : framing::none;
    case 14: return iequals(name, "Content-Length") ? framing::content_length : framing::none;
    case 16: return iequals(name, "Proxy-Connection") ? framing::decline : framing::none;
    case 17: return iequals(name, "Transfer-Encoding") ? framing::decline : framing::none;
    default: return framing::none;
  }
}

// Fields the scan keeps before it adds them (a request with more is declined).
constexpr std::size_t max_fields = 32;

}  // namespace

std::size_t parse_simple_request(std::string_view data, const simple_request_limits& limits,
                                 request& out, bool& keep_alive) {
  const char* p = data.data();
  const char* const end = p + data.size();
  // method SP request-target SP "HTTP/1.1" CRLF
  const char* const method = p;
  while (p < end && is_token(*p)) ++p;
  if (p == method || p == end || *p != ' ') return 0;
  const std::string_view method_text(method, static_cast<std::size_t>(p - method));
  ++p;
  const char* const target = p;
  while (p < end && is_target(*p)) ++p;
  if (p == target || p == end || *p != ' ') return 0;
  const std::string_view target_text(target, static_cast<std::size_t>(p - target));
  ++p;
  constexpr std::string_view version = "HTTP/1.1\r\n";
  if (static_cast<std::size_t>(end - p) < version.size() ||
      std::string_view(p, version.size()) != version) {
    return 0;
  }
  p += version.size();

  // The fields are added once the whole message is known to be taken (nothing to undo).
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
    if (end - p < 2) return 0;
    if (p[0] == '\r') {
      if (p[1] != '\n') return 0;
      p += 2;
      break;
    }
    // field-name ":" OWS field-value OWS CRLF, not followed by an obs-fold
    const char* name = p;
    while (end - p >= 4 && is_token(p[0]) && is_token(p[1]) && is_token(p[2]) && is_token(p[3])) {
      p += 4;
    }
    while (p < end && is_token(*p)) ++p;
    if (p == name || p == end || *p != ':') return 0;
    const std::string_view field_name(name, static_cast<std::size_t>(p - name));
    ++p;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* value = p;
    p = skip_text(p, end);
    if (end - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t') return 0;
    const char* value_end = p;
    while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    const std::string_view field_value(value, static_cast<std::size_t>(value_end - value));
    p += 2;
    switch (framing_of(field_name)) {
      case framing::none: break;
      case framing::decline: return 0;
      case framing::content_length:
        if (has_length || field_value.empty() || field_value.size() > 18) return 0;
        for (char c : field_value) {
          if (!is_digit(c)) return 0;
          length = length * 10 + static_cast<std::uint64_t>(c - '0');
        }
        has_length = true;
        break;
      case framing::connection:
        if (iequals(field_value, "close")) {
          close = true;
        } else if (!iequals(field_value, "keep-alive")) {
          return 0;
        }
        break;
    }
    if (count == max_fields) return 0;
    kept[2 * count] = {field_name.data(), field_name.size()};
    kept[2 * count + 1] = {field_value.data(), field_value.size()};
    ++count;
  }
  const auto head = static_cast<std::size_t>(p - data.data());
  if (head >= limits.header_limit || length > limits.body_limit ||
      static_cast<std::uint64_t>(end - p) < length) {
    return 0;
  }
  out.method.assign(method_text);
  out.target.assign(target_text);
  out.version = 11;
  for (std::size_t i = 0; i < count; ++i) {
    out.headers.add_parsed(std::string_view(kept[2 * i].data, kept[2 * i].size),
                           std::string_view(kept[2 * i + 1].data, kept[2 * i + 1].size));
  }
  out.body.assign(p, static_cast<std::size_t>(length));
  keep_alive = !close;
  return head + static_cast<std::size_t>(length);
}

}  // namespace outrider::http::detail
