// http_call: one-shot blocking HTTP/1.1 exchanges with 127.0.0.1 for
// whole-process tests. Deliberately not the project's http::client: tests
// must be able to send malformed and hostile bytes, and check what the
// server answers independently of our own client.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace outrider::testing {

struct http_reply {
  int status = 0;    // 0 when no HTTP answer arrived
  std::string head;  // status line and header fields
  std::string body;  // as sent (a chunked body is not decoded)

  // First value of header `name` (case-insensitive), "" if absent.
  std::string header(const std::string& name) const;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

// Sends `bytes` to 127.0.0.1:port on a fresh connection and reads until the
// peer closes (or `timeout` passes without data).
http_reply raw_http(std::uint16_t port, const std::string& bytes,
                    std::chrono::seconds timeout = std::chrono::seconds(30));

// `method target` with Host, Connection: close, Content-Length and, unless
// `headers` names one, Content-Type: application/json.
http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = "", const header_list& headers = {});

}  // namespace outrider::testing
