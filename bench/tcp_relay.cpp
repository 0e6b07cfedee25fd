// bench_tcp_relay: a zero-work TCP relay, the floor of "one more process in the middle".
// Accepts on --listen HOST:PORT (port 0 picks one; prints `listening on HOST:PORT` when
// ready), connects each accepted connection to --target HOST:PORT and copies bytes both ways,
// no parsing, on one thread with one epoll set (level-triggered): per message and direction one
// epoll_wait wake-up, one read and one write, what nginx's stream proxy or any sidecar does at
// the least. TCP_NODELAY on both sockets, as the sidecar and the broker client set it.
// bench_sidecar_publish --relay-port publishes a third path through it, interleaved with the
// direct and the sidecar paths, so its added latency over direct is the cost of the hop alone
// (two loopback hops, two wake-ups of a sleeping process), measured in the same run.
//   bench_tcp_relay --listen 127.0.0.1:0 --target 127.0.0.1:BROKER_PORT [--spin true]
// --listen unix:/path: accept on a Unix socket instead (prints `listening on unix:/path`), to
// compare one hop over a Unix socket with one over TCP loopback (an experiment).
// --spin true: poll epoll without sleeping (timeout 0, one core busy the whole time), so the
// relay is never woken: its added latency less the spinning one's is the cost of its two
// wake-ups (an experiment, not bench/run's).
// Runs until SIGTERM or SIGINT. A connection whose peer closes is closed on both sides
// (a half-close is forwarded as a full close: the broker protocol never half-closes).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/driver.h"

namespace {

constexpr std::size_t buffer_bytes = 64 * 1024;
constexpr int max_events = 64;

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int /*signal*/) {
  stop_requested = 1;
}

bool parse_address(const std::string& text, sockaddr_in& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(&out, 0, sizeof out);
  out.sin_family = AF_INET;
  if (inet_pton(AF_INET, text.substr(0, colon).c_str(), &out.sin_addr) != 1) return false;
  try {
    const int port = std::stoi(text.substr(colon + 1));
    if (port < 0 || port > 65535) return false;
    out.sin_port = htons(static_cast<std::uint16_t>(port));
  } catch (...) {
    return false;
  }
  return true;
}

void set_nodelay_nonblocking(int fd) {
  const int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// One direction of a relayed connection: bytes read from `from` not yet written to `to`.
struct direction {
  int from = -1;
  int to = -1;
  std::vector<char> pending;  // what a short write left (empty almost always)
};

// A relayed connection: the accepted socket and its upstream, one direction each way.
struct pair_state {
  direction up;    // client -> target
  direction down;  // target -> client
};

class relay {
 public:
  relay(int listener, sockaddr_in target, bool spin)
      : listener_(listener), target_(target), spin_(spin) {}

  int run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return perror_status("epoll_create1");
    if (!watch(listener_, EPOLLIN, EPOLL_CTL_ADD)) return perror_status("epoll_ctl");
    std::array<epoll_event, max_events> events{};
    while (stop_requested == 0) {
      const int n = epoll_wait(epoll_, events.data(), max_events, spin_ ? 0 : -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return perror_status("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        const auto what = events[static_cast<std::size_t>(i)].events;
        if (fd == listener_) {
          accept_all();
        } else {
          on_ready(fd, what);
        }
      }
    }
    return 0;
  }

 private:
  static int perror_status(const char* what) {
    std::perror(what);
    return 1;
  }

  bool watch(int fd, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epoll_, op, fd, &ev) == 0;
  }

  void accept_all() {
    for (;;) {
      const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;  // EAGAIN or a transient error: wait for the next event
      const int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      // A blocking connect on loopback: the relay is a benchmark tool, connections are few.
      if (upstream < 0 ||
          connect(upstream, reinterpret_cast<const sockaddr*>(&target_), sizeof target_) != 0) {
        std::perror("connect to target");
        if (upstream >= 0) close(upstream);
        close(client);
        continue;
      }
      set_nodelay_nonblocking(client);
      set_nodelay_nonblocking(upstream);
      auto state = std::make_shared<pair_state>();
      state->up = {client, upstream, {}};
      state->down = {upstream, client, {}};
      by_fd_[client] = state;
      by_fd_[upstream] = state;
      watch(client, EPOLLIN, EPOLL_CTL_ADD);
      watch(upstream, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  // Readable: relay what `fd` has to its peer. Writable: flush what waits for `fd`.
  void on_ready(int fd, std::uint32_t what) {
    const auto found = by_fd_.find(fd);
    if (found == by_fd_.end()) return;
    const auto state = found->second;  // keeps the pair alive through close_pair
    direction& reading = fd == state->up.from ? state->up : state->down;
    direction& writing = fd == state->up.from ? state->down : state->up;  // writes to fd
    if ((what & EPOLLOUT) != 0 && !flush(writing)) return close_pair(*state);
    if ((what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && reading.pending.empty()) {
      const ssize_t got = read(fd, buffer_.data(), buffer_.size());
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return close_pair(*state);
      if (got > 0) {
        const ssize_t put = write(reading.to, buffer_.data(), static_cast<std::size_t>(got));
        if (put < 0 && errno != EAGAIN) return close_pair(*state);
        const std::size_t written = put < 0 ? 0 : static_cast<std::size_t>(put);
        if (written < static_cast<std::size_t>(got)) {
          reading.pending.assign(buffer_.data() + written, buffer_.data() + got);
        }
      }
    }
    update_interest(*state);
  }

  // Writes what a short write left; false when the socket failed.
  static bool flush(direction& d) {
    if (d.pending.empty()) return true;
    const ssize_t put = write(d.to, d.pending.data(), d.pending.size());
    if (put < 0) return errno == EAGAIN || errno == EINTR;
    d.pending.erase(d.pending.begin(), d.pending.begin() + put);
    return true;
  }

  // A side is read while its direction has nothing pending, and watched for writability while
  // the other direction waits to write to it. epoll_ctl only when that changes.
  void update_interest(pair_state& s) {
    for (direction* d : {&s.up, &s.down}) {
      direction& other = d == &s.up ? s.down : s.up;
      const std::uint32_t want =
          (d->pending.empty() ? EPOLLIN : 0U) | (other.pending.empty() ? 0U : EPOLLOUT);
      auto& current = interest_[d->from];
      if (current != want) {
        watch(d->from, want, EPOLL_CTL_MOD);
        current = want;
      }
    }
  }

  void close_pair(pair_state& s) {
    for (int fd : {s.up.from, s.down.from}) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      interest_.erase(fd);
      by_fd_.erase(fd);
    }
  }

  int listener_;
  sockaddr_in target_;
  bool spin_;
  int epoll_ = -1;
  std::array<char, buffer_bytes> buffer_{};
  std::unordered_map<int, std::shared_ptr<pair_state>> by_fd_;
  std::unordered_map<int, std::uint32_t> interest_;  // absent = EPOLLIN (as added)
};

int run(bench::arg_parser& args) {
  const std::string listen_text = args.get("listen", "127.0.0.1:0");
  const std::string target_text = args.get("target", "");
  const std::string spin = args.get("spin", "false");
  if (spin != "true" && spin != "false") args.add_problem("--spin must be true or false");
  sockaddr_in listen_address{};
  sockaddr_in target{};
  constexpr std::string_view unix_prefix = "unix:";
  const bool on_unix = listen_text.starts_with(unix_prefix);
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  if (on_unix) {
    const std::string path = listen_text.substr(unix_prefix.size());
    if (path.empty() || path.size() >= sizeof unix_address.sun_path) {
      args.add_problem("--listen unix:/path needs a path shorter than 108 bytes");
    }
    std::strncpy(unix_address.sun_path, path.c_str(), sizeof unix_address.sun_path - 1);
  } else if (!parse_address(listen_text, listen_address)) {
    args.add_problem("--listen must be IPv4:PORT or unix:/path");
  }
  if (!parse_address(target_text, target)) args.add_problem("--target IPv4:PORT is required");
  if (!args.finish()) return 2;

  const int listener =
      socket(on_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  if (on_unix) {
    unlink(unix_address.sun_path);
  } else {
    (void)setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  const bool bound = on_unix ? bind(listener, reinterpret_cast<const sockaddr*>(&unix_address),
                                    sizeof unix_address) == 0
                             : bind(listener, reinterpret_cast<const sockaddr*>(&listen_address),
                                    sizeof listen_address) == 0;
  if (listener < 0 || !bound || listen(listener, SOMAXCONN) != 0) {
    std::perror("bench_tcp_relay: listen");
    return 1;
  }
  if (on_unix) {
    std::printf("listening on unix:%s\n", unix_address.sun_path);
  } else {
    socklen_t length = sizeof listen_address;
    getsockname(listener, reinterpret_cast<sockaddr*>(&listen_address), &length);
    std::array<char, INET_ADDRSTRLEN> host{};
    inet_ntop(AF_INET, &listen_address.sin_addr, host.data(), host.size());
    std::printf("listening on %s:%u\n", host.data(), ntohs(listen_address.sin_port));
  }
  std::fflush(stdout);

  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return relay(listener, target, spin == "true").run();
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  return run(args);
}
