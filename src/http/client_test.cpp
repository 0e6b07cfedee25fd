// The client's borrowing send(): the request is lent, the answer goes to a receiver.
#include "http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <vector>

#include "http/raw_peer_test_support.h"
#include "http/router.h"
#include "http/server.h"
#include "io/runtime.h"

namespace outrider::http {
namespace {

using namespace std::chrono_literals;

// Keeps the request it lends (as the ambassador's call state does) and counts answers.
struct lending_receiver final : client::receiver {
  request req;
  int answers = 0;
  std::promise<result<response>> answer;
  void on_response(result<response>&& r) override {
    ++answers;
    answer.set_value(std::move(r));
  }
};

// Reads one request head (the tests send no body) from `fd`; empty at the end.
std::string read_head(int fd) {
  std::string data;
  char c = 0;
  while (data.find("\r\n\r\n") == std::string::npos) {
    if (::recv(fd, &c, 1, 0) != 1) return {};
    data += c;
  }
  return data;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// A pooled connection that the peer closes after reading the request (no answer): the
// client tries the lent request once more on a fresh connection, unchanged, and answers
// the receiver once; then it holds the receiver no more.
TEST(client_borrowing, a_stale_pooled_connection_resends_the_lent_request_and_answers_once) {
  std::uint16_t listener_port = 0;
  const int listener = test_support::loopback_listener(listener_port);
  std::vector<std::string> heads;  // every request head the peer read, in order
  std::thread peer([listener, &heads] {
    constexpr std::string_view ok =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
    int first = ::accept(listener, nullptr, nullptr);
    heads.push_back(read_head(first));
    send_all(first, ok);
    heads.push_back(read_head(first));  // read, then closed unanswered: stale
    ::close(first);
    int second = ::accept(listener, nullptr, nullptr);
    heads.push_back(read_head(second));
    send_all(second, ok);
    read_head(second);  // until the client closes
    ::close(second);
  });

  io::runtime rt{1};
  rt.start();
  {
    client c(rt.context(0));
    auto dest = url::parse("http://127.0.0.1:" + std::to_string(listener_port) + "/x");
    ASSERT_TRUE(dest);
    for (int i = 0; i < 2; ++i) {
      auto to = std::make_shared<lending_receiver>();
      to->req.method = "GET";
      to->req.target = "/lent?n=" + std::to_string(i);
      to->req.headers.add("X-Lent", "yes");
      auto answered = to->answer.get_future();
      // On the client's thread: a pooled connection takes the fast path.
      boost::asio::post(rt.context(0), [&c, &dest, to] { c.send(*dest, to->req, 5s, to); });
      auto r = answered.get();
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, "ok");
      // The client let go of the receiver (and the request it lent) once it answered.
      std::promise<long> uses;
      boost::asio::post(rt.context(0), [&uses, &to] { uses.set_value(to.use_count()); });
      EXPECT_EQ(uses.get_future().get(), 1);
      EXPECT_EQ(to->answers, 1);
      EXPECT_EQ(to->req.target, "/lent?n=" + std::to_string(i));  // unchanged
    }
  }
  rt.stop();
  peer.join();
  ::close(listener);
  ASSERT_EQ(heads.size(), 3U);
  EXPECT_TRUE(heads[0].starts_with("GET /lent?n=0 HTTP/1.1\r\n")) << heads[0];
  EXPECT_TRUE(heads[1].starts_with("GET /lent?n=1 HTTP/1.1\r\n")) << heads[1];
  EXPECT_EQ(heads[2], heads[1]);  // the same request again, on the fresh connection
  EXPECT_NE(heads[2].find("X-Lent: yes\r\n"), std::string::npos) << heads[2];
}

// Calls to two origins in turn on the client's thread (the fast path keeps its last
// origin's pool and Host text): each carries its own origin's Host.
TEST(client_borrowing, calls_to_two_origins_in_turn_carry_each_its_own_host) {
  io::runtime rt{1};
  rt.start();
  router routes;
  routes.add_sync("GET", "/host", [](const request& req) {
    return response::with_body(200, std::string(req.headers.get("Host").value_or("")),
                               "text/plain");
  });
  server a(rt, {}, routes.as_handler());
  server b(rt, {}, routes.as_handler());
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(b.start());
  {
    client c(rt.context(0));
    for (int i = 0; i < 6; ++i) {
      const auto port = std::to_string((i % 2 == 0 ? a : b).port());
      auto dest = url::parse("http://127.0.0.1:" + port + "/host");
      ASSERT_TRUE(dest);
      auto to = std::make_shared<lending_receiver>();
      to->req.method = "GET";
      auto answered = to->answer.get_future();
      boost::asio::post(rt.context(0), [&c, &dest, to] { c.send(*dest, to->req, 5s, to); });
      auto r = answered.get();
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->body, "127.0.0.1:" + port) << "call " << i;
    }
  }
  a.stop(1s);
  b.stop(1s);
  rt.stop();
}

}  // namespace
}  // namespace outrider::http
