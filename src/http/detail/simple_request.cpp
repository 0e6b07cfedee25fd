#include "http/detail/simple_request.h"

#include "http/detail/field_scan.h"

namespace outrider::http::detail {
namespace {

using field_scan::is_token;

// A request-target byte this scan takes: visible ASCII (Beast takes more; those
// requests go to Beast).
bool is_target(char c) {
  return c > 0x20 && c < 0x7f;
}

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

  field_scan::field_block fields;
  p = field_scan::scan_fields(p, end, field_scan::message_kind::request, fields);
  if (p == nullptr) return 0;
  const std::uint64_t length = fields.length;
  const auto head = static_cast<std::size_t>(p - data.data());
  if (head >= limits.header_limit || length > limits.body_limit ||
      static_cast<std::uint64_t>(end - p) < length) {
    return 0;
  }
  out.method.assign(method_text);
  out.target.assign(target_text);
  out.version = 11;
  fields.add_to(out.headers);
  out.body.assign(p, static_cast<std::size_t>(length));
  keep_alive = !fields.close;
  return head + static_cast<std::size_t>(length);
}

}  // namespace outrider::http::detail
