#include "broker_client/address.h"

#include <charconv>
#include <fmt/format.h>

namespace outrider::broker_client {

result<address> parse_address(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return error(errc::invalid_argument,
                 fmt::format("invalid broker address '{}': {} (expected host:port or unix:/path)",
                             text, why));
  };
  address out;
  if (text.starts_with(unix_address_prefix)) {
    out.is_unix = true;
    out.path = std::string(text.substr(unix_address_prefix.size()));
    if (out.path.empty()) return bad("empty socket path");
    return out;
  }
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("unbalanced brackets");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  constexpr unsigned max_port = 65535;
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
      port > max_port) {
    return bad("port must be a number from 0 to 65535");
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

}  // namespace outrider::broker_client
