#include "testing/http_call.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace outrider::testing {

std::string http_reply::header(const std::string& name) const {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    const std::size_t start = pos + 2;
    const std::size_t end = head.find("\r\n", start);
    const std::string line = head.substr(start, end == std::string::npos ? end : end - start);
    const auto colon = line.find(':');
    if (colon == name.size() && ::strncasecmp(line.c_str(), name.c_str(), name.size()) == 0) {
      const auto value = line.find_first_not_of(" \t", colon + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
    pos = end;
  }
  return "";
}

http_reply raw_http(std::uint16_t port, const std::string& bytes, std::chrono::seconds timeout) {
  http_reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return r;
  }
  for (std::size_t sent = 0; sent < bytes.size();) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;  // sockets with a timeout are not restarted
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[16384];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;  // e.g. SIGCHLD when a test stops/continues a child
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto end = in.find("\r\n\r\n");
  if (in.size() < 12 || end == std::string::npos) return r;
  r.status = std::atoi(in.substr(9, 3).c_str());
  r.head = in.substr(0, end);
  r.body = in.substr(end + 4);
  return r;
}

http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body, const header_list& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  bool has_type = false;
  for (const auto& [name, value] : headers) {
    req += name + ": " + value + "\r\n";
    has_type = has_type || ::strcasecmp(name.c_str(), "content-type") == 0;
  }
  if (!has_type) req += "content-type: application/json\r\n";
  req += "content-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return raw_http(port, req);
}

}  // namespace outrider::testing
