// The embedded backend against a real `outrider broker` process: the backend
// conformance suite (src/backends/testing/conformance.h) and what only a
// networked backend has (the broker going away and coming back).
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <gtest/gtest.h>
#include <set>
#include <thread>

#include "backends/embedded/embedded_backend.h"
#include "backends/testing/conformance.h"
#include "broker_client/client.h"
#include "io/runtime.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
namespace bc = broker_client;
using backends::conformance::backend_conformance;
using backends::conformance::sink;
using testing::outrider_binary;
using testing::process;

constexpr auto broker_start_timeout = 20s;

std::unique_ptr<process> start_broker(std::uint16_t port, const std::string& data_dir) {
  auto p = std::make_unique<process>(
      std::vector<std::string>{outrider_binary(), "broker", "--listen",
                               "127.0.0.1:" + std::to_string(port), "--data-dir", data_dir,
                               "--metrics-listen", ""},
      testing::process_options{{}, "", "broker"});
  EXPECT_TRUE(p->wait_for_output("outrider broker listening on", broker_start_timeout))
      << p->output();
  return p;
}

// One broker for the whole conformance suite (topics are unique per test).
class broker_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    data_ = std::make_unique<testing::temp_dir>("outrider-embedded");
    port_ = testing::free_port();
    broker_ = start_broker(port_, data_->path() + "/broker");
  }
  void TearDown() override {
    broker_.reset();
    data_.reset();
  }
  static std::string address() { return "127.0.0.1:" + std::to_string(port_); }

 private:
  static inline std::uint16_t port_ = 0;
  std::unique_ptr<testing::temp_dir> data_;
  std::unique_ptr<process> broker_;
};

[[maybe_unused]] auto* const environment =
    ::testing::AddGlobalTestEnvironment(new broker_environment);

// Bodies of a queue's messages, read with PEEK on a private connection.
std::vector<std::string> peek_bodies(const std::string& address, const std::string& queue) {
  boost::asio::io_context ctx{1};
  bc::client_options o;
  o.address = address;
  auto c = bc::client::create(ctx, o);
  std::vector<std::string> bodies;
  c->connect([&](status s) {
    if (!s) return c->close();
    c->peek(queue, 100, [&](result<std::vector<bc::peeked_message>> r) {
      if (r) {
        for (auto& m : *r) bodies.push_back(m.body);
      }
      c->close();
    });
  });
  ctx.run();
  return bodies;
}

std::shared_ptr<backends::backend> make_backend(const std::string& address) {
  backends::embedded_backend_options o;
  o.address = address;
  o.max_reconnect_interval = 500ms;
  return std::make_shared<backends::embedded_backend>(o);
}

backends::conformance::target embedded_target() {
  backends::conformance::target t;
  t.name = "embedded";
  t.make = [] { return make_backend(broker_environment::address()); };
  t.advance = [](backends::backend&, nanoseconds d) { std::this_thread::sleep_for(d); };
  t.now = [](backends::backend&) { return std::chrono::system_clock::now(); };
  t.dead_letter_bodies = [](backends::backend&, const std::string& topic,
                            const std::string& app_id) {
    return peek_bodies(broker_environment::address(),
                       backends::embedded_backend::queue_name(topic, app_id) + ".dlq");
  };
  t.short_lease = 1s;
  return t;
}

// The same backend on a shared io_context (how the sidecar runs it: on its
// runtime's context 0, no backend thread). The runtime stops after the backend
// is closed, as in the sidecar.
backends::conformance::target embedded_shared_context_target() {
  auto t = embedded_target();
  t.name = "embedded_shared_context";
  t.make = [] {
    auto rt = std::make_shared<io::runtime>(1);
    rt->start();
    backends::embedded_backend_options o;
    o.address = broker_environment::address();
    o.max_reconnect_interval = 500ms;
    auto b = std::make_shared<backends::embedded_backend>(o, rt->context(0));
    return std::shared_ptr<backends::backend>(b.get(), [rt, b](backends::backend*) mutable {
      b->close();
      b.reset();
      rt->stop();
    });
  };
  return t;
}

// As the sidecar runs it by default: publishes on the runtime's context 0,
// subscriptions on a connection of their own on a delivery runtime.
backends::conformance::target embedded_deliveries_apart_target() {
  auto t = embedded_target();
  t.name = "embedded_deliveries_apart";
  t.make = [] {
    auto rt = std::make_shared<io::runtime>(1);
    auto deliveries = std::make_shared<io::runtime>(1);
    rt->start();
    deliveries->start();
    backends::embedded_backend_options o;
    o.address = broker_environment::address();
    o.max_reconnect_interval = 500ms;
    auto b =
        std::make_shared<backends::embedded_backend>(o, rt->context(0), &deliveries->context(0));
    return std::shared_ptr<backends::backend>(b.get(),
                                              [rt, deliveries, b](backends::backend*) mutable {
                                                b->close();
                                                b.reset();
                                                deliveries->stop();
                                                rt->stop();
                                              });
  };
  return t;
}

INSTANTIATE_TEST_SUITE_P(embedded, backend_conformance,
                         ::testing::Values(embedded_target(), embedded_shared_context_target(),
                                           embedded_deliveries_apart_target()),
                         backends::conformance::target_name);

template <class T, class Call>
T call(Call c) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  c([p](T v) { p->set_value(std::move(v)); });
  EXPECT_EQ(f.wait_for(15s), std::future_status::ready);
  return f.get();
}

bool wait_until_healthy(backends::backend& b, bool want, std::chrono::seconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    auto s = call<status>([&](auto done) { b.health(done); });
    if (s.ok() == want) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// The broker is killed and restarted on the same port and data: publishes in
// flight complete (confirmed or unavailable, none left hanging), deliveries of
// the old connection can no longer be settled, health follows the
// connection, and the subscription works again after the reconnect.
TEST(embedded_backend_process, survives_a_broker_restart) {
  testing::temp_dir dir("outrider-embedded-restart");
  const std::uint16_t port = testing::free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto broker = start_broker(port, dir.path());
  auto b = make_backend(address);
  ASSERT_TRUE(wait_until_healthy(*b, true, 10s));

  sink s;
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    b->subscribe({"orders", "billing", 5, 30s, 10}, s.fn(), done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  auto first = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b->publish({backends::message{"orders", {}, {}, "before", {}}}, done);
  });
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(s.wait_for(1));
  const backends::delivery old = s.at(0);  // left unsettled across the crash

  // Publishes racing a SIGKILL: each completes exactly once, ok or unavailable.
  std::atomic<int> completed{0};
  std::atomic<int> failed_unavailable{0};
  std::atomic<int> other_errors{0};
  constexpr int racing = 200;
  for (int i = 0; i < racing; ++i) {
    b->publish({backends::message{"orders", {}, {}, "racing " + std::to_string(i), {}}},
               [&](result<std::vector<backends::publish_outcome>> r) {
                 if (!r) {
                   (r.error().code == errc::unavailable ? failed_unavailable : other_errors)++;
                 } else if (!r->at(0).outcome.ok()) {
                   (r->at(0).outcome.error().code == errc::unavailable ? failed_unavailable
                                                                       : other_errors)++;
                 }
                 ++completed;
               });
    if (i == racing / 2) broker->kill_now();
  }
  const auto end = std::chrono::steady_clock::now() + 15s;
  while (completed < racing && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(completed.load(), racing);
  EXPECT_GT(failed_unavailable.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);
  ASSERT_TRUE(wait_until_healthy(*b, false, 10s));
  auto down = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b->publish({backends::message{"orders", {}, {}, "while down", {}}}, done);
  });
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, errc::unavailable);

  broker = start_broker(port, dir.path());
  ASSERT_TRUE(wait_until_healthy(*b, true, 15s));
  EXPECT_EQ(
      call<status>([&](auto done) { b->settle(old.handle, backends::settle_action::ack(), done); })
          .error()
          .code,
      errc::delivery_not_found);
  auto after = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b->publish({backends::message{"orders", {}, {}, "after", {}}}, done);
  });
  ASSERT_TRUE(after.ok()) << after.error().message;
  ASSERT_TRUE(after->at(0).outcome.ok());
  // The subscription is back: "before" (never acked) is redelivered, "after" arrives.
  bool saw_after = false;
  bool saw_before_again = false;
  const auto until = std::chrono::steady_clock::now() + 15s;
  std::size_t next = 1;
  while (!(saw_after && saw_before_again) && std::chrono::steady_clock::now() < until) {
    if (!s.wait_for(next + 1, 100ms)) continue;
    const auto d = s.at(next++);
    saw_after = saw_after || d.body == "after";
    saw_before_again = saw_before_again || (d.body == "before" && d.id == old.id);
    (void)call<status>(
        [&](auto done) { b->settle(d.handle, backends::settle_action::ack(), done); });
  }
  EXPECT_TRUE(saw_after);
  EXPECT_TRUE(saw_before_again);
  b->close();
}

// Publishes and acks made in one turn of the backend's context go to the
// broker as one PUBLISH and one ACK (the backend coalesces them; a publish
// made while nothing awaits a confirm goes out at once, alone): every call
// still gets its own outcomes, in its own order, with its own ids, and every
// ack settles its own delivery (nothing is redelivered).
TEST(embedded_backend_process, publishes_and_acks_of_one_turn_each_get_their_own_outcome) {
  io::runtime rt(1);
  rt.start();
  backends::embedded_backend_options o;
  o.address = broker_environment::address();
  auto b = std::make_shared<backends::embedded_backend>(o, rt.context(0));
  ASSERT_TRUE(wait_until_healthy(*b, true, 10s));
  const std::string topic = "coalesced";
  sink s;
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    b->subscribe({topic, "app", 0, 60s, 200}, s.fn(), done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;

  // 40 calls from one handler on the context: single messages with a given id,
  // and pairs with backend-assigned ids.
  constexpr int calls = 40;
  struct call_result {
    std::vector<id128> sent;
    std::size_t size = 0;
    result<std::vector<backends::publish_outcome>> got = error(errc::internal, "no answer");
  };
  std::vector<call_result> results(calls);
  std::atomic<int> answered{0};
  std::promise<void> all;
  rt.post(0, [&] {
    for (int i = 0; i < calls; ++i) {
      std::vector<backends::message> batch;
      if (i % 2 == 0) {
        const auto id = id128::random();
        results[i].sent.push_back(id);
        batch.push_back(backends::message{topic, id, {}, "single " + std::to_string(i), {}});
      } else {
        batch.push_back(backends::message{topic, {}, {}, "pair a " + std::to_string(i), {}});
        batch.push_back(backends::message{topic, {}, {}, "pair b " + std::to_string(i), {}});
      }
      results[i].size = batch.size();
      b->publish(std::move(batch), [&, i](result<std::vector<backends::publish_outcome>> r) {
        results[i].got = std::move(r);
        if (++answered == calls) all.set_value();
      });
    }
  });
  ASSERT_EQ(all.get_future().wait_for(15s), std::future_status::ready);
  std::set<id128> ids;
  for (int i = 0; i < calls; ++i) {
    ASSERT_TRUE(results[i].got.ok()) << i << ": " << results[i].got.error().message;
    ASSERT_EQ(results[i].got->size(), results[i].size) << i;
    for (std::size_t k = 0; k < results[i].size; ++k) {
      const auto& out = results[i].got->at(k);
      EXPECT_TRUE(out.outcome.ok()) << i;
      if (!results[i].sent.empty()) {
        EXPECT_EQ(out.id, results[i].sent[k]) << i;
      }
      ids.insert(out.id);
    }
  }
  constexpr std::size_t messages = calls / 2 + calls;  // 20 singles + 20 pairs
  EXPECT_EQ(ids.size(), messages);

  // Every delivery acked from one handler: one ACK frame, each ack answered ok.
  ASSERT_TRUE(s.wait_for(messages, 15s));
  std::vector<backends::delivery> got;
  for (std::size_t i = 0; i < messages; ++i) got.push_back(s.at(i));
  std::atomic<int> acked{0};
  std::atomic<int> ack_errors{0};
  std::promise<void> all_acked;
  rt.post(0, [&] {
    for (const auto& d : got) {
      b->settle(d.handle, backends::settle_action::ack(), [&](status st) {
        if (!st.ok()) ++ack_errors;
        if (++acked == static_cast<int>(messages)) all_acked.set_value();
      });
    }
  });
  ASSERT_EQ(all_acked.get_future().wait_for(15s), std::future_status::ready);
  EXPECT_EQ(ack_errors.load(), 0);
  std::set<id128> delivered;
  for (const auto& d : got) delivered.insert(d.id);
  EXPECT_EQ(delivered, ids);
  // In call order: the first call, made while nothing awaited a confirm, went
  // out at once; the others of the turn followed as one merged PUBLISH.
  std::vector<std::string> expected_order;
  std::vector<std::string> delivered_order;
  for (int i = 0; i < calls; ++i) {
    if (i % 2 == 0) {
      expected_order.push_back("single " + std::to_string(i));
    } else {
      expected_order.push_back("pair a " + std::to_string(i));
      expected_order.push_back("pair b " + std::to_string(i));
    }
  }
  for (const auto& d : got) delivered_order.push_back(d.body);
  EXPECT_EQ(delivered_order, expected_order);
  // Settled for good: the queue holds nothing (PEEK shows ready and leased messages).
  EXPECT_TRUE(peek_bodies(broker_environment::address(),
                          backends::embedded_backend::queue_name(topic, "app"))
                  .empty());
  b->close();
  b.reset();
  rt.stop();
}

// Deliveries apart: on_delivery runs on the delivery context's thread, the
// publish's answer on the shared context's, and a delivery settled there is
// acked (not redelivered) while the publishing connection keeps working.
TEST(embedded_backend_process, deliveries_apart_run_on_the_delivery_context) {
  io::runtime rt(1);
  io::runtime deliveries(1);
  rt.start();
  deliveries.start();
  backends::embedded_backend_options o;
  o.address = broker_environment::address();
  backends::embedded_backend b(o, rt.context(0), &deliveries.context(0));
  ASSERT_TRUE(wait_until_healthy(b, true, 10s));
  std::atomic<int> on_delivery_thread{0};
  std::atomic<int> elsewhere{0};
  sink s;
  auto record = s.fn();
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    b.subscribe(
        {"apart", "app", 5, 30s, 10},
        [&](backends::delivery d) {
          (deliveries.context(0).get_executor().running_in_this_thread() ? on_delivery_thread
                                                                         : elsewhere)++;
          record(std::move(d));
        },
        done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  std::atomic<bool> confirmed_on_io_thread{false};
  auto pub = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b.publish({backends::message{"apart", {}, {}, "one", {}}},
              [&, done](result<std::vector<backends::publish_outcome>> r) {
                confirmed_on_io_thread = rt.context(0).get_executor().running_in_this_thread();
                done(std::move(r));
              });
  });
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(confirmed_on_io_thread.load());
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_EQ(on_delivery_thread.load(), 1);
  EXPECT_EQ(elsewhere.load(), 0);
  auto acked = call<status>(
      [&](auto done) { b.settle(s.at(0).handle, backends::settle_action::ack(), done); });
  EXPECT_TRUE(acked.ok()) << acked.error().message;
  // A settle made on the delivery context itself (as the sidecar's, when the
  // app answers) runs there at once and acks too.
  auto second = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b.publish({backends::message{"apart", {}, {}, "two", {}}}, done);
  });
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(s.wait_for(2));
  auto acked_there = call<status>([&](auto done) {
    deliveries.post(
        0, [&b, h = s.at(1).handle, done] { b.settle(h, backends::settle_action::ack(), done); });
  });
  EXPECT_TRUE(acked_there.ok()) << acked_there.error().message;
  EXPECT_TRUE(peek_bodies(broker_environment::address(),
                          backends::embedded_backend::queue_name("apart", "app"))
                  .empty());
  b.close();
  deliveries.stop();
  rt.stop();
}

}  // namespace
}  // namespace outrider
