#include "http/detail/simple_response.h"

#include "http/detail/field_scan.h"

namespace outrider::http::detail {

using field_scan::is_digit;
using field_scan::skip_text;

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

  field_scan::field_block fields;
  p = field_scan::scan_fields(p, end, field_scan::message_kind::response, fields);
  if (p == nullptr) return false;
  const std::uint64_t length = fields.length;
  const auto head = static_cast<std::size_t>(p - data.data());
  if (!fields.has_length || head >= limits.header_limit || length > limits.body_limit ||
      (limits.stream_threshold != 0 && length > limits.stream_threshold) ||
      static_cast<std::uint64_t>(end - p) != length) {
    return false;
  }
  out.status = status;
  fields.add_to(out.headers);
  out.body.assign(p, static_cast<std::size_t>(length));
  keep_alive = !fields.close;
  return true;
}

}  // namespace outrider::http::detail
