// address: the broker's listen/connect address syntax, shared by server and client.
//   "host:port", "[v6]:port"  TCP (host is an IP address for listening; a name for connecting)
//   "unix:/path/to/socket"    Unix domain socket
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace outrider::broker_client {

inline constexpr std::string_view unix_address_prefix = "unix:";

struct address {
  bool is_unix = false;
  std::string path;  // is_unix
  std::string host;  // !is_unix; without brackets
  std::uint16_t port = 0;
};

// Errors: invalid_argument naming the address and what is wrong.
result<address> parse_address(std::string_view text);

}  // namespace outrider::broker_client
