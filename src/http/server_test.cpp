// Whole-server tests over real loopback sockets.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/raw_peer_test_support.h"
#include "http/router.h"
#include "io/runtime.h"

namespace outrider::http {
namespace {

using namespace std::chrono_literals;

// A blocking loopback TCP connection for speaking raw HTTP.
class raw_socket {
 public:
  explicit raw_socket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~raw_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;
  raw_socket(raw_socket&& o) noexcept : fd_(o.fd_), connected_(o.connected_) { o.fd_ = -1; }

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  bool send(std::string_view data) {
    while (!data.empty()) {
      auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads until `count` complete responses (by Content-Length) arrived, EOF, or timeout.
  std::string read_responses(int count, std::chrono::milliseconds timeout = 5s) {
    std::string data;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (complete_responses(data) < count) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
    }
    return data;
  }
  // True if the peer closed the connection within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[4096];
        auto n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) return true;
      }
    }
    return false;
  }

  static int complete_responses(const std::string& data) {
    int count = 0;
    std::size_t pos = 0;
    while (true) {
      auto end = data.find("\r\n\r\n", pos);
      if (end == std::string::npos) return count;
      auto head = data.substr(pos, end - pos);
      std::size_t length = 0;
      auto cl = head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      if (data.size() < end + 4 + length) return count;
      pos = end + 4 + length;
      ++count;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class server_test : public ::testing::Test {
 protected:
  void start(server_options opts = {}) {
    routes_.add_sync("GET", "/hello", [](const request&) {
      return response::with_body(200, "hello, world\n", "text/plain");
    });
    routes_.add_sync("POST", "/echo", [](const request& req) {
      return response::with_body(200, req.body, "application/octet-stream");
    });
    routes_.add("GET", "/slow", [this](request&&, responder r) {
      ++slow_started_;
      std::thread([r] {
        std::this_thread::sleep_for(300ms);
        r.send(response::with_body(200, "slow done", "text/plain"));
      }).detach();
    });
    rt_.start();
    server_ = std::make_unique<server>(rt_, opts, routes_.as_handler());
    ASSERT_TRUE(server_->start());
  }
  void TearDown() override {
    if (server_) server_->stop(1s);
  }

  io::runtime rt_{2};
  router routes_;
  std::unique_ptr<server> server_;
  std::atomic<int> slow_started_{0};
};

TEST_F(server_test, keep_alive_serves_many_requests_on_one_connection) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.connected());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto out = s.read_responses(1);
    EXPECT_NE(out.find("HTTP/1.1 200 OK"), std::string::npos) << out;
    EXPECT_NE(out.find("hello, world"), std::string::npos);
  }
}

// Beyond max_connections a new connection is closed before any request is
// read; the open ones go on, and a slot freed by a close is usable again.
TEST_F(server_test, connections_beyond_the_limit_are_closed_and_the_open_ones_go_on) {
  server_options o;
  o.max_connections = 2;
  start(o);
  raw_socket a(server_->port());
  raw_socket b(server_->port());
  ASSERT_TRUE(a.connected() && b.connected());
  for (auto* s : {&a, &b}) {  // both accepted and served
    ASSERT_TRUE(s->send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_NE(s->read_responses(1).find("HTTP/1.1 200 OK"), std::string::npos);
  }
  {
    raw_socket c(server_->port());  // the kernel completes the handshake; the server closes it
    ASSERT_TRUE(c.connected());
    EXPECT_TRUE(c.closed_within(5s));
  }
  ASSERT_TRUE(a.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(a.read_responses(1).find("HTTP/1.1 200 OK"), std::string::npos);
  // Closing one frees its slot (the server notices the close asynchronously: poll).
  { raw_socket gone = std::move(b); }
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    raw_socket d(server_->port());
    if (d.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"))
      served = d.read_responses(1, 1s).find("HTTP/1.1 200 OK") != std::string::npos;
    if (!served) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(server_test, pipelined_requests_answered_in_order) {
  start();
  raw_socket s(server_->port());
  std::string batch;
  for (int i = 0; i < 10; ++i) {
    batch += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n" + std::to_string(10 + i);
  }
  ASSERT_TRUE(s.send(batch));
  auto out = s.read_responses(10);
  ASSERT_EQ(raw_socket::complete_responses(out), 10) << out;
  std::size_t pos = 0;
  for (int i = 0; i < 10; ++i) {
    auto next = out.find("\r\n\r\n" + std::to_string(10 + i), pos);
    ASSERT_NE(next, std::string::npos) << "response " << i << " out of order";
    pos = next;
  }
}

TEST_F(server_test, thousand_concurrent_connections) {
  start();
  constexpr int connections = 1000;
  std::vector<raw_socket> sockets;
  sockets.reserve(connections);
  for (int i = 0; i < connections; ++i) {
    sockets.emplace_back(server_->port());
    ASSERT_TRUE(sockets.back().connected()) << i;
  }
  for (auto& s : sockets) ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  int ok = 0;
  for (auto& s : sockets) {
    auto out = s.read_responses(1);
    if (out.find("200 OK") != std::string::npos) ++ok;
  }
  EXPECT_EQ(ok, connections);
  EXPECT_EQ(server_->active_connections(), static_cast<std::size_t>(connections));
}

TEST_F(server_test, malformed_request_line_gets_400_json) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.send("GARBAGE\r\n\r\n"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("HTTP/1.1 400"), std::string::npos) << out;
  EXPECT_NE(out.find("\"errorCode\":\"ERR_MALFORMED_REQUEST\""), std::string::npos) << out;
  EXPECT_TRUE(s.closed_within(2s));
}

TEST_F(server_test, conflicting_length_and_chunked_rejected) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("HTTP/1.1 400"), std::string::npos) << out;
}

TEST_F(server_test, oversized_headers_get_431) {
  server_options opts;
  opts.header_limit = 1024;
  start(opts);
  raw_socket s(server_->port());
  ASSERT_TRUE(
      s.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("HTTP/1.1 431"), std::string::npos) << out;
  EXPECT_NE(out.find("ERR_HEADER_TOO_LARGE"), std::string::npos);
}

TEST_F(server_test, oversized_body_gets_413) {
  server_options opts;
  opts.body_limit = 1000;
  start(opts);
  raw_socket s(server_->port());
  ASSERT_TRUE(s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                     std::string(5000, 'b')));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out;
  EXPECT_NE(out.find("ERR_BODY_TOO_LARGE"), std::string::npos);
}

TEST_F(server_test, slow_header_sender_is_cut_off_by_header_deadline) {
  server_options opts;
  opts.header_timeout = 600ms;
  start(opts);
  raw_socket s(server_->port());
  const std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  bool closed = false;
  auto began = std::chrono::steady_clock::now();
  for (char c : request) {
    if (!s.send(std::string(1, c))) break;
    if (s.closed_within(200ms)) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed) << "server kept a one-byte-per-200ms client past the header deadline";
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
}

TEST_F(server_test, idle_connection_closed_after_idle_timeout) {
  server_options opts;
  opts.idle_timeout = 300ms;
  start(opts);
  raw_socket s(server_->port());
  EXPECT_TRUE(s.closed_within(3s));
}

TEST_F(server_test, expect_100_continue_is_honoured) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = s.read_responses(1, 2s);
  EXPECT_NE(interim.find("HTTP/1.1 100 Continue"), std::string::npos) << interim;
  ASSERT_TRUE(s.send("ping"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("ping"), std::string::npos) << out;
}

TEST_F(server_test, stop_lets_in_flight_requests_complete) {
  start();
  raw_socket busy(server_->port());
  raw_socket idle(server_->port());
  ASSERT_TRUE(busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  while (slow_started_ == 0) std::this_thread::sleep_for(5ms);
  auto stopped = std::async(std::launch::async, [this] { server_->stop(5s); });
  auto out = busy.read_responses(1);
  EXPECT_NE(out.find("slow done"), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_TRUE(idle.closed_within(2s));
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(server_->active_connections(), 0u);
  raw_socket late(server_->port());
  EXPECT_FALSE(late.connected() && late.send("GET /hello HTTP/1.1\r\n\r\n") &&
               !late.closed_within(1s));
}

// The io_context of the runtime that runs the calling thread (a handler's own).
boost::asio::io_context& own_context(io::runtime& rt) {
  for (std::size_t i = 0; i < rt.size(); ++i) {
    if (rt.context(i).get_executor().running_in_this_thread()) return rt.context(i);
  }
  ADD_FAILURE() << "not on a thread of the runtime";
  return rt.context(0);
}

// An answer given later on the connection's own thread (as a backend's callback on the
// I/O thread gives the sidecar's publish its confirm) is written in the responder's call,
// not after the session's resume: the client can read it while the code that answered
// still runs on that thread (before, the session could not resume until it returned, and
// the poll below waited its whole 10 s in vain).
TEST_F(server_test, a_later_answer_on_the_connections_thread_is_written_in_the_responders_call) {
  std::atomic<int> client_fd{-1};
  std::promise<bool> readable_in_call;
  routes_.add("GET", "/later", [&](request&&, responder r) {
    boost::asio::post(own_context(rt_), [&, r] {
      r.send(response::with_body(200, "later", "text/plain"));
      pollfd p{client_fd.load(), POLLIN, 0};
      readable_in_call.set_value(::poll(&p, 1, 10000) == 1);
    });
  });
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.connected());
  client_fd = s.fd();
  ASSERT_TRUE(s.send("GET /later HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(readable_in_call.get_future().get());
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("HTTP/1.1 200 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("later"), std::string::npos) << out;
  // The connection goes on: the session resumed after the early write.
  ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  out = s.read_responses(1);
  EXPECT_NE(out.find("hello, world"), std::string::npos) << out;
}

// A later answer on the connection's thread larger than the socket takes at once: what
// the early write left is written by the session once it resumes, whole and in order,
// and the connection serves the next request.
TEST_F(server_test, a_large_later_answer_on_the_connections_thread_arrives_whole) {
  const std::string big(8 * 1024 * 1024, 'b');
  routes_.add("GET", "/later-big", [&](request&&, responder r) {
    boost::asio::post(own_context(rt_), [&, r] {
      r.send(response::with_body(200, big, "application/octet-stream"));
    });
  });
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.connected());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.send("GET /later-big HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto out = s.read_responses(1);
    ASSERT_EQ(raw_socket::complete_responses(out), 1) << out.size();
    const auto body_at = out.find("\r\n\r\n") + 4;
    EXPECT_EQ(out.size() - body_at, big.size());
    EXPECT_EQ(out.find_first_not_of('b', body_at), std::string::npos);
  }
}

// The server keeps one responder state per connection and reuses it for the next
// request only when nothing of the previous request holds it. A handler that keeps
// copies of its responder after answering (and answers again, ignored) makes each next
// request take a state of its own: every request gets its own answer, exactly one, and
// the copies dropped later (on another thread) send nothing.
TEST_F(server_test, responders_kept_after_their_answer_leave_the_next_requests_alone) {
  std::mutex m;
  std::vector<responder> kept;
  int served = 0;
  int unsent_earlier = 0;  // earlier requests' responders that no longer count as answered
  routes_.add("GET", "/keep", [&](request&&, responder r) {
    std::lock_guard lock(m);
    for (const auto& k : kept) unsent_earlier += k.sent() ? 0 : 1;
    kept.push_back(r);
    r.send(response::with_body(200, "kept " + std::to_string(++served), "text/plain"));
  });
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.connected());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(s.send("GET /keep HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto out = s.read_responses(1);
    ASSERT_EQ(raw_socket::complete_responses(out), 1) << out;
    EXPECT_NE(out.find("kept " + std::to_string(i)), std::string::npos) << out;
  }
  {
    std::lock_guard lock(m);
    EXPECT_EQ(unsent_earlier, 0);
    for (auto& r : kept) r.send(response::with_body(500, "again", "text/plain"));
    kept.clear();
  }
  ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto out = s.read_responses(2, 500ms);
  EXPECT_EQ(raw_socket::complete_responses(out), 1) << out;
  EXPECT_EQ(out.find("again"), std::string::npos) << out;
  EXPECT_NE(out.find("hello, world"), std::string::npos) << out;
}

// A responder dropped unanswered later (on the connection's thread, or on another
// thread) answers 500, and the connection serves the next request; so does one
// answered from another thread.
TEST_F(server_test, later_drops_and_answers_from_other_threads_keep_the_connection_going) {
  routes_.add("GET", "/drop-here",
              [&](request&&, responder r) { boost::asio::post(own_context(rt_), [r] {}); });
  routes_.add("GET", "/drop-there",
              [&](request&&, responder r) { std::thread([r = std::move(r)] {}).detach(); });
  routes_.add("GET", "/answer-there", [&](request&&, responder r) {
    std::thread([r = std::move(r)] {
      r.send(response::with_body(200, "from there", "text/plain"));
    }).detach();
  });
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.connected());
  for (int round = 0; round < 3; ++round) {
    for (const char* path : {"/drop-here", "/drop-there"}) {
      ASSERT_TRUE(s.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto out = s.read_responses(1);
      EXPECT_NE(out.find("HTTP/1.1 500"), std::string::npos) << path << ": " << out;
      EXPECT_NE(out.find("ERR_INTERNAL"), std::string::npos) << path << ": " << out;
    }
    ASSERT_TRUE(s.send("GET /answer-there HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto out = s.read_responses(1);
    EXPECT_NE(out.find("from there"), std::string::npos) << out;
  }
  ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("hello, world"), std::string::npos) << out;
}

TEST_F(server_test, head_has_length_but_no_body) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(
      s.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto out = s.read_responses(1, 1s);
  out += s.read_responses(1, 1s);
  EXPECT_EQ(out.find("hello, world"), out.rfind("hello, world"))
      << "HEAD must not carry a body: " << out;
}

// The client against the server: pooling, timeouts, refused connections.
class client_test : public server_test {
 protected:
  // Sends on the client's context, as the sidecar does (a pooled connection then takes
  // the client's fast path), or with `from_here` from the test's thread (always run()).
  result<response> call(client& c, const std::string& u, std::string method = "GET",
                        std::string body = "", nanoseconds timeout = 5s, bool from_here = false) {
    auto dest = url::parse(u);
    if (!dest) return dest.error();
    request req;
    req.method = std::move(method);
    req.body = std::move(body);
    std::promise<result<response>> done;
    auto go = [&, d = std::move(*dest), req = std::move(req)]() mutable {
      c.send(d, std::move(req), timeout, [&](result<response> r) { done.set_value(std::move(r)); });
    };
    if (from_here) {
      go();
    } else {
      boost::asio::post(ctx(), std::move(go));
    }
    return done.get_future().get();
  }
  boost::asio::io_context& ctx() { return rt_.context(1); }
};

TEST_F(client_test, reuses_pooled_connections) {
  start();
  client c(ctx());
  auto base = "http://127.0.0.1:" + std::to_string(server_->port());
  for (int i = 0; i < 20; ++i) {
    // On the client's thread (the fast path) and from another (run()), alternately.
    auto r = call(c, base + "/echo", "POST", "body" + std::to_string(i), 5s, i % 2 == 1);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "body" + std::to_string(i));
  }
  EXPECT_EQ(server_->active_connections(), 1u);
}

// Answers bigger than the first 16 KiB read, and a HEAD, on a pooled connection.
TEST_F(client_test, large_answers_and_head_on_a_pooled_connection) {
  start();
  client c(ctx());
  auto base = "http://127.0.0.1:" + std::to_string(server_->port());
  ASSERT_TRUE(call(c, base + "/hello"));
  const std::string big(200 * 1024, 'b');
  for (int i = 0; i < 3; ++i) {
    auto r = call(c, base + "/echo", "POST", big);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body.size(), big.size());
    EXPECT_EQ(r->body, big);
    auto h = call(c, base + "/hello", "HEAD");
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->status, 200);
    EXPECT_TRUE(h->body.empty());
  }
  EXPECT_EQ(server_->active_connections(), 1u);
}

TEST_F(client_test, timeout_and_refused_are_errors) {
  start();
  client c(ctx());
  auto base = "http://127.0.0.1:" + std::to_string(server_->port());
  auto slow = call(c, base + "/slow", "GET", "", 50ms);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, errc::deadline_exceeded);

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // find a port nobody listens on
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto refused = call(c, "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::unavailable);
}

TEST_F(client_test, survives_server_closing_idle_connection) {
  server_options opts;
  opts.idle_timeout = 100ms;
  start(opts);
  client c(ctx());
  auto base = "http://127.0.0.1:" + std::to_string(server_->port());
  ASSERT_TRUE(call(c, base + "/hello"));
  std::this_thread::sleep_for(400ms);  // the server closes the pooled connection
  auto r = call(c, base + "/hello");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

// A pooled connection idle for a second or more is probed before reuse: one the server
// closed meanwhile is dropped, so even a POST (never retried once sent) gets its answer on
// a fresh connection. (Without the probe the POST would go out on the closed connection.)
TEST_F(client_test, a_connection_idle_past_the_probe_age_and_closed_by_the_peer_is_not_reused) {
  server_options opts;
  opts.idle_timeout = 100ms;
  start(opts);
  client c(ctx());
  auto base = "http://127.0.0.1:" + std::to_string(server_->port());
  ASSERT_TRUE(call(c, base + "/hello"));
  EXPECT_EQ(c.idle_connections(), 1U);
  std::this_thread::sleep_for(1200ms);  // past the probe age; the server closed it long ago
  auto r = call(c, base + "/echo", "POST", "x");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "x");
}

// A peer that reads each request and closes without answering: the client reports it at
// once (it must not wait for more bytes after the end, which would last until the timeout),
// with and without streamed responses.
TEST_F(client_test, a_connection_closed_without_an_answer_is_an_error_at_once) {
  start();
  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  std::thread peer([listener] {
    for (int i = 0; i < 4; ++i) {  // two calls, each tried twice at most
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      (void)::recv(fd, buf, sizeof buf, 0);
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
  });
  const auto u = "http://127.0.0.1:" + std::to_string(listener_port) + "/";
  client_options streaming;
  streaming.stream_response_threshold = 1024;
  client plain_client(ctx());
  client streaming_client(ctx(), streaming);
  for (client* c : {&plain_client, &streaming_client}) {
    auto r = call(*c, u, "POST", "x", 60s);  // a POST is not retried on a fresh connection
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::upstream_error) << r.error().message;
  }
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  peer.join();
}

// What the client writes for a buffered request on a plain connection: the request line,
// the request's fields in order without the ones it owns (Host, Connection, framing) or any
// holding CR/LF, then Host, User-Agent unless given, and Content-Length for a body or a
// POST/PUT/OPTIONS (as Beast's serializer wrote it). A TRACE with a body is refused at once.
TEST_F(client_test, writes_requests_with_its_own_host_and_framing) {
  start();
  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  const auto port = std::to_string(listener_port);
  std::promise<std::vector<std::string>> seen;
  std::thread peer([listener, &seen] {
    std::vector<std::string> requests;
    int fd = ::accept(listener, nullptr, nullptr);
    std::string data;
    while (fd >= 0 && requests.size() < 3) {
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      for (;;) {
        auto end = data.find("\r\n\r\n");
        if (end == std::string::npos) break;
        std::size_t body = 0;
        if (auto cl = data.find("Content-Length: "); cl != std::string::npos && cl < end) {
          body = std::stoul(data.substr(cl + 16));
        }
        if (data.size() < end + 4 + body) break;
        requests.push_back(data.substr(0, end + 4 + body));
        data.erase(0, end + 4 + body);
        static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
    }
    if (fd >= 0) ::close(fd);
    seen.set_value(std::move(requests));
  });
  client c(ctx());
  const auto base = "http://127.0.0.1:" + port;
  auto send_request = [&](request req) {
    std::promise<result<response>> done;
    c.send(*url::parse(base + "/default"), std::move(req), 5s,
           [&](result<response> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  };
  request get;
  get.method = "GET";
  get.target = "/path?q=1";
  get.headers.add("X-A", "1");
  get.headers.add("Host", "elsewhere");
  get.headers.add("Connection", "close");
  get.headers.add("X-Split", "a\r\nX-Injected: 1");
  get.headers.add("x-b", "2");
  auto r = send_request(std::move(get));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "ok");
  request empty_post;
  empty_post.method = "POST";
  ASSERT_TRUE(send_request(std::move(empty_post)));
  request post;
  post.method = "POST";
  post.headers.add("User-Agent", "me");
  post.headers.add("Content-Length", "99");
  post.body = "abc";
  ASSERT_TRUE(send_request(std::move(post)));
  request trace;
  trace.method = "TRACE";
  trace.body = "x";
  auto refused = send_request(std::move(trace));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::invalid_argument);

  auto requests = seen.get_future().get();
  peer.join();
  ::close(listener);
  const auto host = "Host: 127.0.0.1:" + port + "\r\n";
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0], "GET /path?q=1 HTTP/1.1\r\nX-A: 1\r\nx-b: 2\r\n" + host +
                             "User-Agent: outrider\r\n\r\n");
  EXPECT_EQ(requests[1], "POST /default HTTP/1.1\r\n" + host +
                             "User-Agent: outrider\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(requests[2],
            "POST /default HTTP/1.1\r\nUser-Agent: me\r\n" + host + "Content-Length: 3\r\n\r\nabc");
}

// Messages that arrive in pieces, and requests sent the moment the previous answer arrived,
// are all read: reads that drained the socket make the next one wait for readiness rather
// than try first (detail/direct_io.h), which must never miss bytes already there.
TEST_F(client_test, messages_in_pieces_and_back_to_back_are_all_read) {
  start();
  raw_socket s(server_->port());
  ASSERT_TRUE(s.send("POST /echo HTTP/1.1\r\nHo"));
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(s.send("st: x\r\nContent-Length: 5\r\n\r\nab"));
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(s.send("cde"));
  auto out = s.read_responses(1);
  EXPECT_NE(out.find("\r\n\r\nabcde"), std::string::npos) << out;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_NE(s.read_responses(1).find("hello, world"), std::string::npos) << "request " << i;
  }

  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  std::thread peer([listener] {
    int fd = ::accept(listener, nullptr, nullptr);
    std::string data;
    auto put = [fd](std::string_view piece) {
      (void)::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL);
    };
    for (int answered = 0; fd >= 0 && answered < 3;) {
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      while (data.find("\r\n\r\n") != std::string::npos) {
        data.erase(0, data.find("\r\n\r\n") + 4);
        put("HTTP/1.1 200 OK\r\nContent-");
        std::this_thread::sleep_for(20ms);
        put("Length: 4\r\n\r\nab");
        std::this_thread::sleep_for(20ms);
        put("cd");
        ++answered;
      }
    }
    if (fd >= 0) ::close(fd);
  });
  client c(ctx());
  const auto u = "http://127.0.0.1:" + std::to_string(listener_port) + "/";
  for (int i = 0; i < 3; ++i) {
    auto r = call(c, u);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body, "abcd");
  }
  peer.join();
  ::close(listener);
}

// An upstream that closes each connection right after a complete answer (without
// `Connection: close`): the close arrives with the answer's bytes, so the pooled connection
// looks reusable. The next request on it must fail over to a fresh connection at once (the
// peer's reset is a new readiness event), not wait for its deadline.
TEST_F(client_test, an_answer_followed_by_a_close_does_not_stall_the_next_request) {
  start();
  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  std::thread peer([listener] {
    for (int i = 0; i < 6; ++i) {  // three calls, each tried twice at most
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      if (::recv(fd, buf, sizeof buf, 0) > 0) {
        static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  });
  client c(ctx());
  const auto u = "http://127.0.0.1:" + std::to_string(listener_port) + "/";
  for (int i = 0; i < 3; ++i) {
    auto r = call(c, u, "GET", "", 10s);
    ASSERT_TRUE(r) << "call " << i << ": " << r.error().message;
    EXPECT_EQ(r->body, "ok");
  }
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  peer.join();
}

// A response whose body ends with the connection (no Content-Length, not chunked)
// is read to the end and its connection is not pooled.
TEST_F(client_test, a_close_delimited_answer_is_read_whole_and_not_pooled) {
  start();
  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  std::thread peer([listener] {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    char buf[4096];
    if (::recv(fd, buf, sizeof buf, 0) > 0) {
      static constexpr std::string_view answer = "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end";
      (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  });
  client c(ctx());
  const auto u = "http://127.0.0.1:" + std::to_string(listener_port) + "/";
  auto r = call(c, u, "GET", "", 10s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "until the end");
  EXPECT_EQ(r->headers.get("X-A").value_or(""), "1");
  peer.join();
  std::promise<std::size_t> idle;
  boost::asio::post(ctx(), [&] { idle.set_value(c.idle_connections()); });
  EXPECT_EQ(idle.get_future().get(), 0u);
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
}

TEST(url, parses_and_rejects) {
  auto u = url::parse("https://Example.com/a/b?c=d");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/a/b?c=d");
  auto v6 = url::parse("http://[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->origin(), "http://[::1]:8080");
  EXPECT_FALSE(url::parse("ftp://x/"));
  EXPECT_FALSE(url::parse("not a url"));
  EXPECT_FALSE(url::parse("http:///nohost"));
}

TEST(parse_host_port, accepts_and_rejects) {
  EXPECT_EQ(parse_host_port("127.0.0.1:3500")->second, 3500);
  EXPECT_EQ(parse_host_port("[::1]:0")->first, "::1");
  EXPECT_FALSE(parse_host_port("127.0.0.1"));
  EXPECT_FALSE(parse_host_port(":80"));
  EXPECT_FALSE(parse_host_port("h:99999"));
  EXPECT_FALSE(parse_host_port("h:8x"));
}

}  // namespace
}  // namespace outrider::http
