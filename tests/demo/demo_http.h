// Helpers of the store-pickup demo tests: one-shot HTTP/1.1 calls to
// 127.0.0.1 and lenient JSON parsing.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace outrider::demo_test {

struct reply {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1:port (Connection: close), read to the end.
inline reply http(std::uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = "",
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = method + " " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "content-type: application/json\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  req += "content-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < req.size()) {
    const auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[16384];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto end = in.find("\r\n\r\n");
  if (in.size() < 12 || end == std::string::npos) return r;
  r.status = std::atoi(in.substr(9, 3).c_str());
  r.body = in.substr(end + 4);
  if (in.find("Transfer-Encoding: chunked") != std::string::npos ||
      in.find("transfer-encoding: chunked") != std::string::npos) {
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
