// Helpers of the store-pickup demo tests: one-shot HTTP/1.1 calls to
// 127.0.0.1 and lenient JSON parsing.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "testing/http_call.h"

namespace outrider::demo_test {

using reply = testing::http_reply;

// One HTTP/1.1 request to 127.0.0.1:port (Connection: close), read to the end;
// a chunked body is decoded.
inline reply http(std::uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = "", const testing::header_list& headers = {}) {
  reply r = testing::http_call(port, method, target, body, headers);
  if (r.header("transfer-encoding") == "chunked") {
    std::string plain;  // de-chunk
    std::size_t pos = 0;
    while (pos < r.body.size()) {
      const auto line_end = r.body.find("\r\n", pos);
      if (line_end == std::string::npos) break;
      const std::size_t size = std::stoul(r.body.substr(pos, line_end - pos), nullptr, 16);
      if (size == 0) break;
      plain += r.body.substr(line_end + 2, size);
      pos = line_end + 2 + size + 2;
    }
    r.body = plain;
  }
  return r;
}

inline boost::json::value parse_or_null(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  return ec ? boost::json::value() : v;
}

}  // namespace outrider::demo_test
