// The client against a scripted fake broker (a thread with a blocking socket),
// for behaviour that depends on exactly which frames arrive in one read. The
// client against the real server is tested in src/broker/server_test.cpp.
#include "broker_client/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

namespace outrider::broker_client {
namespace {

// One connection, driven by the test: read_frame() returns the next frame the
// client sent, send() writes bytes in one send() call.
class fake_broker {
 public:
  struct received {
    wire::opcode op = wire::opcode::error;
    std::uint32_t request_id = 0;
  };

  fake_broker() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~fake_broker() {
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_fd_);
  }
  fake_broker(const fake_broker&) = delete;
  fake_broker& operator=(const fake_broker&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void accept_one() { fd_ = ::accept(listen_fd_, nullptr, nullptr); }

  received read_frame() {
    for (;;) {
      std::size_t used = 0;
      auto f = parse_frame(buffer_, wire::default_max_frame_bytes, used);
      if (!f.ok()) {
        ADD_FAILURE() << "bad frame from the client: " << f.error().message;
        return {};
      }
      if (*f) {
        received r{(*f)->op, (*f)->request_id};
        buffer_.erase(0, used);
        return r;
      }
      char chunk[4096];
      const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        ADD_FAILURE() << "the client closed the connection";
        return {};
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void send(const std::string& bytes) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    EXPECT_EQ(n, static_cast<ssize_t>(bytes.size()));
  }

 private:
  int listen_fd_ = -1;
  int fd_ = -1;
  int port_ = 0;
  std::string buffer_;
};

class client_test : public ::testing::Test {
 protected:
  void SetUp() override {
    io_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    if (c_) c_->close();
    c_.reset();
    guard_.reset();
    io_.join();
  }

  // Connects the client to the fake broker and subscribes (subscription id 7).
  void connect_and_subscribe(std::function<void(delivery)> on_delivery) {
    client_options o;
    o.address = broker_.address();
    o.keepalive_interval = nanoseconds::zero();
    c_ = client::create(ctx_, o);
    std::promise<status> connected;
    c_->connect([&](status s) { connected.set_value(std::move(s)); });
    broker_.accept_one();
    auto hello = broker_.read_frame();
    ASSERT_EQ(hello.op, wire::opcode::hello);
    std::string out;
    hello_ok ok;
    ok.max_frame_bytes = static_cast<std::uint32_t>(wire::default_max_frame_bytes);
    ok.max_body_bytes = 1 << 20;
    ok.max_batch_messages = 100;
    ok.server_name = "fake";
    encode_hello_ok(out, hello.request_id, ok);
    broker_.send(out);
    ASSERT_TRUE(connected.get_future().get().ok());

    std::promise<result<subscription_id>> subscribed;
    c_->subscribe({"q", 10}, std::move(on_delivery),
                  [&](result<subscription_id> id) { subscribed.set_value(std::move(id)); });
    auto sub = broker_.read_frame();
    ASSERT_EQ(sub.op, wire::opcode::subscribe);
    out.clear();
    encode_ok(out, sub.request_id, subscription);
    broker_.send(out);
    auto id = subscribed.get_future().get();
    ASSERT_TRUE(id.ok());
    ASSERT_EQ(*id, subscription);
  }

  static delivery delivery_of(delivery_tag tag) {
    delivery d;
    d.subscription = subscription;
    d.tag = tag;
    d.id = id128{0, tag};
    d.body = "body";
    return d;
  }

  static constexpr subscription_id subscription = 7;
  boost::asio::io_context ctx_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      ctx_.get_executor()};
  std::thread io_;
  fake_broker broker_;
  std::shared_ptr<client> c_;
};

// Regression: a CONFIRM that arrived in the same read as DELIVER frames waited
// for the consumer's work on every delivery before it (the sidecar started an
// app call per delivery before answering the app's publish).
TEST_F(client_test, a_confirm_read_with_deliveries_completes_before_them) {
  std::mutex m;
  std::vector<std::string> events;
  std::promise<void> all_seen;
  auto note = [&](std::string what) {
    std::lock_guard lock(m);
    events.push_back(std::move(what));
    if (events.size() == 3) all_seen.set_value();
  };
  connect_and_subscribe([&](delivery d) { note("delivery " + std::to_string(d.tag)); });

  c_->publish(
      {outgoing_message{"t", {}, {}, "body", {}}}, [&](result<std::vector<publish_result>> r) {
        note(r.ok() && r->size() == 1 && r->front().outcome.ok() ? "confirm" : "confirm failed");
      });
  auto pub = broker_.read_frame();
  ASSERT_EQ(pub.op, wire::opcode::publish);

  // One send: DELIVER(1), CONFIRM, DELIVER(2).
  std::string out;
  std::vector<delivery> first{delivery_of(1)};
  std::vector<delivery> second{delivery_of(2)};
  encode_deliver(out, subscription, first);
  encode_confirm(out, pub.request_id, std::vector<publish_result>{{id128{1, 1}, status{}}});
  encode_deliver(out, subscription, second);
  broker_.send(out);

  ASSERT_EQ(all_seen.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::lock_guard lock(m);
  EXPECT_EQ(events, (std::vector<std::string>{"confirm", "delivery 1", "delivery 2"}));
}

// The writer writes what fits the socket at once and waits for the socket
// only for the rest: PUBLISH frames far larger than the socket buffers, made
// while the broker reads nothing, all arrive whole and in the order made.
TEST_F(client_test, frames_larger_than_the_socket_buffer_arrive_whole_and_in_order) {
  connect_and_subscribe([](delivery) {});
  constexpr int batches = 12;
  const std::string body(900 * 1024, 'x');  // 12 x 900 KiB: beyond loopback's buffers
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < batches; ++i) {
    c_->publish({outgoing_message{"t", {}, {}, body, {}}},
                [](result<std::vector<publish_result>>) {});
  }
  for (int i = 0; i < batches; ++i) {
    auto f = broker_.read_frame();
    ASSERT_EQ(f.op, wire::opcode::publish) << i;
    ids.push_back(f.request_id);
  }
  for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
}

}  // namespace
}  // namespace outrider::broker_client
