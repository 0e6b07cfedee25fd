// The rabbitmq backend while RabbitMQ goes away under load and comes back:
// publishers see `unavailable` errors (never a silent loss), every confirmed
// message is delivered once RabbitMQ is back, and the subscription resumes
// by itself. Label `slow` (a RabbitMQ node boots twice).
#include <atomic>
#include <boost/json.hpp>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "backends/rabbitmq/rabbitmq_backend.h"
#include "rabbitmq_server.h"
#include "testing/http_call.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;

// How long RabbitMQ stays down under load (the issue asks for 30 s).
constexpr auto outage = 30s;

TEST(rabbitmq_outage, publishers_see_errors_and_every_confirmed_message_is_delivered) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  testing::rabbitmq_server server("outage");
  ASSERT_TRUE(server.start()) << server.server_output();

  backends::rabbitmq_backend_options o;
  o.url = server.url();
  o.max_reconnect_interval = 1s;
  auto b = std::make_shared<backends::rabbitmq_backend>(o);

  std::mutex mutex;
  std::set<std::string> delivered;
  std::promise<result<backends::subscription_handle>> subscribed;
  const auto subscribe = [&] {
    b->subscribe(
        {"outage", "app", 0, 30s, 50},
        [&, b](backends::delivery d) {
          {
            std::lock_guard lock(mutex);
            delivered.insert(d.body);
          }
          b->settle(d.handle, backends::settle_action::ack(), nullptr);
        },
        [&](result<backends::subscription_handle> r) { subscribed.set_value(std::move(r)); });
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {  // the first connection may still be in progress
    subscribed = {};
    subscribe();
    auto r = subscribed.get_future().get();
    if (r.ok()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << r.error().message;
    std::this_thread::sleep_for(100ms);
  }

  // Publishers: one message at a time each, recording what was confirmed.
  std::atomic<bool> stop{false};
  std::atomic<int> unavailable{0};
  std::atomic<int> other_errors{0};
  std::set<std::string> confirmed;
  std::atomic<int> confirmed_after_restart{0};
  std::atomic<bool> restarted{false};
  auto publisher = [&](int who) {
    for (int i = 0; !stop; ++i) {
      const std::string body = std::to_string(who) + "-" + std::to_string(i);
      std::promise<status> p;
      b->publish({backends::message{"outage", {}, {}, body, {}}},
                 [&](result<std::vector<backends::publish_outcome>> r) {
                   p.set_value(r ? r->at(0).outcome : status(r.error()));
                 });
      const status s = p.get_future().get();
      if (s.ok()) {
        std::lock_guard lock(mutex);
        confirmed.insert(body);
        if (restarted) ++confirmed_after_restart;
      } else {
        (s.error().code == errc::unavailable ? unavailable : other_errors)++;
        std::this_thread::sleep_for(20ms);
      }
    }
  };
  std::thread p1(publisher, 1);
  std::thread p2(publisher, 2);
  std::this_thread::sleep_for(2s);
  server.stop();
  std::this_thread::sleep_for(outage);
  ASSERT_TRUE(server.start()) << server.server_output();
  restarted = true;
  const auto resumed_by = std::chrono::steady_clock::now() + 60s;
  while (confirmed_after_restart < 200 && std::chrono::steady_clock::now() < resumed_by) {
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  p1.join();
  p2.join();
  EXPECT_GE(confirmed_after_restart.load(), 200);
  EXPECT_GT(unavailable.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);

  // Every confirmed message arrives (at least once).
  std::size_t missing = 0;
  const auto until = std::chrono::steady_clock::now() + 90s;
  do {
    std::lock_guard lock(mutex);
    missing = 0;
    for (const auto& body : confirmed) missing += delivered.contains(body) ? 0 : 1;
    if (missing == 0) break;
  } while ((std::this_thread::sleep_for(100ms), std::chrono::steady_clock::now() < until));
  EXPECT_EQ(missing, 0U) << "of " << confirmed.size() << " confirmed messages";
  std::printf("confirmed %zu, unavailable %d, delivered %zu\n", confirmed.size(),
              unavailable.load(), delivered.size());
  b->close();
}

// The same through a sidecar process: with RabbitMQ down, the sidecar's
// publish API answers 503 with Retry-After (ERR_PUBSUB_... / unavailable),
// never 2xx; once RabbitMQ is back, publishing succeeds again by itself, and
// every publish the sidecar accepted (204) is in the subscription queue.
TEST(rabbitmq_outage, sidecar_answers_503_with_retry_after_and_loses_nothing_it_accepted) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  testing::rabbitmq_server server("sidecar-outage");
  ASSERT_TRUE(server.start()) << server.server_output();

  // A checker subscription (its queue is bound before anything is published).
  backends::rabbitmq_backend_options o;
  o.url = server.url();
  o.max_reconnect_interval = 1s;
  auto checker = std::make_shared<backends::rabbitmq_backend>(o);
  std::mutex mutex;
  std::set<std::string> delivered;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    std::promise<result<backends::subscription_handle>> subscribed;
    checker->subscribe(
        {"sidecar-outage", "checker", 0, 30s, 50},
        [&, checker](backends::delivery d) {
          {
            // The sidecar sent a CloudEvent (structured): its data is what was published.
            std::lock_guard lock(mutex);
            boost::system::error_code ec;
            auto event = boost::json::parse(d.body, ec);
            if (!ec && event.is_object() && event.as_object().contains("data")) {
              delivered.insert(boost::json::serialize(event.at("data")));
            }
          }
          checker->settle(d.handle, backends::settle_action::ack(), nullptr);
        },
        [&](result<backends::subscription_handle> r) { subscribed.set_value(std::move(r)); });
    auto r = subscribed.get_future().get();
    if (r.ok()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << r.error().message;
    std::this_thread::sleep_for(100ms);
  }

  testing::process sidecar({testing::outrider_binary(), "sidecar", "--app-id", "outage-app",
                            "--app-port", "0", "--dapr-http-port", "0", "--metrics-port", "0",
                            "--pubsub-type", "rabbitmq", "--rabbitmq-url", server.url()},
                           testing::process_options{{}, "", "sidecar"});
  ASSERT_TRUE(sidecar.wait_for_output("outrider sidecar listening on", 60s)) << sidecar.output();
  std::smatch m;
  const std::string out = sidecar.output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("listening on 127\\.0\\.0\\.1:(\\d+)"))) << out;
  const auto port = static_cast<std::uint16_t>(std::stoi(m[1].str()));

  int n = 0;
  std::set<std::string> accepted;
  // Publishes one numbered message; records it when the sidecar accepted it.
  auto publish = [&]() {
    const std::string body = "{\"n\":" + std::to_string(n++) + "}";
    auto r = testing::http_call(port, "POST", "/v1.0/publish/pubsub/sidecar-outage", body);
    if (r.status / 100 == 2) accepted.insert(body);
    return r;
  };
  // Up: the sidecar's backend connects (poll: boot order is not guaranteed).
  testing::http_reply r;
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(100ms)) {
    if ((r = publish()).status == 204) break;
  }
  ASSERT_EQ(r.status, 204) << r.body << sidecar.output();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(publish().status, 204);

  server.stop();
  // Down: every publish is refused with 503 + Retry-After (poll until the
  // sidecar noticed; a publish racing the stop may still be confirmed).
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(100ms)) {
    if ((r = publish()).status == 503) break;
  }
  ASSERT_EQ(r.status, 503) << r.head << r.body;
  EXPECT_FALSE(r.header("Retry-After").empty()) << r.head;
  EXPECT_NE(r.body.find("\"errorCode\""), std::string::npos) << r.body;
  for (int i = 0; i < 10; ++i) {
    r = publish();
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_FALSE(r.header("Retry-After").empty()) << r.head;
  }

  ASSERT_TRUE(server.start()) << server.server_output();
  // Back: the sidecar reconnects by itself and publishing succeeds again.
  for (auto end = std::chrono::steady_clock::now() + 90s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(200ms)) {
    if ((r = publish()).status == 204) break;
    EXPECT_EQ(r.status, 503) << r.body;  // never anything but 503 while it reconnects
  }
  ASSERT_EQ(r.status, 204) << r.body << sidecar.output();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(publish().status, 204);

  // Nothing the sidecar accepted is lost.
  std::size_t missing = 0;
  const auto until = std::chrono::steady_clock::now() + 90s;
  do {
    std::lock_guard lock(mutex);
    missing = 0;
    for (const auto& body : accepted) missing += delivered.contains(body) ? 0 : 1;
    if (missing == 0) break;
  } while ((std::this_thread::sleep_for(100ms), std::chrono::steady_clock::now() < until));
  EXPECT_EQ(missing, 0U) << "of " << accepted.size() << " accepted publishes";
  EXPECT_EQ(sidecar.stop(10s).value_or(-1), 0) << sidecar.output();
  checker->close();
}

}  // namespace
}  // namespace outrider
