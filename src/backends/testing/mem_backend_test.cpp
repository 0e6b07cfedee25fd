// mem_backend: the backend conformance suite on its virtual clock, plus what
// only the reference implementation offers (week-long delays without waiting,
// exact round-robin, test hooks).
#include "backends/testing/mem_backend.h"

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

#include "backends/testing/conformance.h"

namespace outrider::backends {
namespace {

using namespace std::chrono_literals;
using conformance::backend_conformance;
using conformance::sink;

conformance::target mem_target() {
  conformance::target t;
  t.name = "mem";
  t.make = [] { return std::make_shared<mem_backend>(); };
  t.advance = [](backend& b, nanoseconds d) { dynamic_cast<mem_backend&>(b).advance_for_test(d); };
  t.now = [](backend& b) { return dynamic_cast<mem_backend&>(b).now(); };
  t.dead_letter_bodies = [](backend& b, const std::string& topic, const std::string& app_id) {
    std::vector<std::string> bodies;
    for (auto& m : dynamic_cast<mem_backend&>(b).dead_letters_for_test(topic, app_id)) {
      bodies.push_back(m.body);
    }
    return bodies;
  };
  return t;
}

INSTANTIATE_TEST_SUITE_P(mem, backend_conformance, ::testing::Values(mem_target()),
                         conformance::target_name);

subscription_handle subscribe(mem_backend& b, subscription_spec spec, sink& s) {
  subscription_handle h = 0;
  b.subscribe(std::move(spec), s.fn(), [&](result<subscription_handle> r) {
    ASSERT_TRUE(r.ok());
    h = *r;
  });
  return h;
}

std::vector<publish_outcome> publish(mem_backend& b, std::vector<message> batch) {
  std::vector<publish_outcome> out;
  b.publish(std::move(batch), [&](result<std::vector<publish_outcome>> r) {
    ASSERT_TRUE(r.ok());
    out = std::move(*r);
  });
  return out;
}

TEST(mem_backend, competing_consumers_are_served_round_robin) {
  mem_backend b;
  sink a1, a2;
  subscribe(b, {"orders", "app-a", 0, {}, 10}, a1);
  subscribe(b, {"orders", "app-a", 0, {}, 10}, a2);
  std::vector<message> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(message{"orders", {}, {}, std::to_string(i), {}});
  publish(b, batch);
  ASSERT_TRUE(a1.wait_for(2));
  ASSERT_TRUE(a2.wait_for(2));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(a1.size(), 2U);
  EXPECT_EQ(a2.size(), 2U);
}

TEST(mem_backend, a_week_long_delay_fires_when_the_clock_gets_there) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 0, {}, 10}, s);
  publish(b, {message{"t", {}, {}, "later", b.now() + std::chrono::hours(24 * 7)}});
  EXPECT_EQ(b.scheduled_for_test(), 1U);
  b.advance_for_test(std::chrono::hours(24 * 7) - 1s);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.size(), 0U);
  b.advance_for_test(1s);
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_EQ(s.at(0).body, "later");
  EXPECT_EQ(b.scheduled_for_test(), 0U);
}

TEST(mem_backend, publish_filter_refuses_single_messages_and_health_follows_flag) {
  mem_backend b;
  b.set_publish_filter_for_test([](const message& m) {
    return m.body == "bad" ? status(error(errc::message_too_large, "too big")) : ok_status();
  });
  auto out = publish(b, {message{"t", {}, {}, "ok", {}}, message{"t", {}, {}, "bad", {}}});
  EXPECT_TRUE(out[0].outcome.ok());
  EXPECT_EQ(out[1].outcome.error().code, errc::message_too_large);
  EXPECT_EQ(b.published_for_test("t").size(), 1U);
  status h;
  b.health([&](status st) { h = std::move(st); });
  EXPECT_TRUE(h.ok());
  b.set_healthy_for_test(false);
  b.health([&](status st) { h = std::move(st); });
  EXPECT_EQ(h.error().code, errc::unavailable);
  b.close();
  b.health([&](status st) { h = std::move(st); });
  EXPECT_EQ(h.error().code, errc::shutting_down);
}

}  // namespace
}  // namespace outrider::backends
