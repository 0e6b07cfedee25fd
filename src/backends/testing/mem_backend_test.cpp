#include "backends/testing/mem_backend.h"

#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

namespace outrider::backends {
namespace {

using namespace std::chrono_literals;

// Collects deliveries from the backend's worker thread.
struct sink {
  std::mutex mutex;
  std::vector<delivery> got;
  backend::delivery_fn fn() {
    return [this](delivery d) {
      std::lock_guard lock(mutex);
      got.push_back(std::move(d));
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 2000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard lock(mutex);
        if (got.size() >= n) {
          return true;
        }
      }
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return got.size();
  }
  delivery at(std::size_t i) {
    std::lock_guard lock(mutex);
    return got.at(i);
  }
};

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

status settle(mem_backend& b, const delivery& d, settle_action a) {
  status st;
  b.settle(d.handle, a, [&](status s) { st = std::move(s); });
  return st;
}

TEST(mem_backend, fans_out_per_app_id_and_competes_within_one) {
  mem_backend b;
  sink a1, a2, other;
  subscribe(b, {"orders", "app-a", 0, {}, 10}, a1);
  subscribe(b, {"orders", "app-a", 0, {}, 10}, a2);
  subscribe(b, {"orders", "app-b", 0, {}, 10}, other);
  std::vector<message> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(message{"orders", {}, {{"k", std::to_string(i)}}, "m" + std::to_string(i), {}});
  }
  auto out = publish(b, batch);
  ASSERT_EQ(out.size(), 4u);
  for (auto& o : out) {
    EXPECT_TRUE(o.outcome.ok());
    EXPECT_FALSE(o.id.is_zero());
  }
  ASSERT_TRUE(other.wait_for(4));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(a1.size() + a2.size(), 4u);
  EXPECT_EQ(a1.size(), 2u);  // round-robin
  EXPECT_EQ(other.at(0).id, out[0].id);
  EXPECT_EQ(other.at(0).headers.at(0).second, "0");
}

TEST(mem_backend, duplicate_pending_id_is_refused) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 0, {}, 1}, s);
  const id128 id{1, 2};
  auto first = publish(b, {message{"t", id, {}, "x", {}}});
  auto second = publish(b, {message{"t", id, {}, "y", {}}});
  EXPECT_TRUE(first[0].outcome.ok());
  ASSERT_FALSE(second[0].outcome.ok());
  EXPECT_EQ(second[0].outcome.error().code, errc::already_exists);
}

TEST(mem_backend, retry_after_waits_and_counts_attempts_then_dead_letters) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 3, {}, 5}, s);
  publish(b, {message{"t", {}, {}, "poison", {}}, message{"t", {}, {}, "fine", {}}});
  ASSERT_TRUE(s.wait_for(2));
  EXPECT_TRUE(settle(b, s.at(1), settle_action::ack()).ok());  // the other one is not blocked
  EXPECT_TRUE(settle(b, s.at(0), settle_action::retry_after(1h)).ok());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.size(), 2u);  // not before the delay
  b.advance_for_test(1h);
  ASSERT_TRUE(s.wait_for(3));
  EXPECT_EQ(s.at(2).attempt, 2u);
  EXPECT_EQ(s.at(2).id, s.at(0).id);
  EXPECT_TRUE(settle(b, s.at(2), settle_action::retry_after(1s)).ok());
  b.advance_for_test(1s);
  ASSERT_TRUE(s.wait_for(4));
  EXPECT_EQ(s.at(3).attempt, 3u);
  EXPECT_TRUE(settle(b, s.at(3), settle_action::retry_after(1s)).ok());  // third failure
  auto dead = b.dead_letters_for_test("t", "a");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, "poison");
  EXPECT_EQ(b.pending_for_test("t", "a"), 0u);
  EXPECT_EQ(settle(b, s.at(3), settle_action::ack()).error().code, errc::delivery_not_found);
}

TEST(mem_backend, release_redelivers_without_counting_an_attempt) {
  mem_backend b;
  sink s;
  auto h = subscribe(b, {"t", "a", 2, {}, 1}, s);
  publish(b, {message{"t", {}, {}, "x", {}}});
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_TRUE(settle(b, s.at(0), settle_action::release()).ok());
  ASSERT_TRUE(s.wait_for(2));
  EXPECT_EQ(s.at(1).attempt, 1u);
  // Unsubscribing releases unsettled deliveries to the next consumer.
  sink other;
  b.unsubscribe(h, nullptr);
  subscribe(b, {"t", "a", 2, {}, 1}, other);
  ASSERT_TRUE(other.wait_for(1));
  EXPECT_EQ(other.at(0).attempt, 1u);
}

TEST(mem_backend, lease_expiry_redelivers_as_a_failed_attempt) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 0, 10s, 1}, s);
  publish(b, {message{"t", {}, {}, "x", {}}});
  ASSERT_TRUE(s.wait_for(1));
  b.advance_for_test(11s);
  ASSERT_TRUE(s.wait_for(2));
  EXPECT_EQ(s.at(1).attempt, 2u);
  EXPECT_EQ(settle(b, s.at(0), settle_action::ack()).error().code, errc::delivery_not_found);
}

TEST(mem_backend, prefetch_bounds_unsettled_deliveries) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 0, {}, 2}, s);
  publish(b, {message{"t", {}, {}, "1", {}}, message{"t", {}, {}, "2", {}},
              message{"t", {}, {}, "3", {}}});
  ASSERT_TRUE(s.wait_for(2));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(settle(b, s.at(0), settle_action::ack()).ok());
  ASSERT_TRUE(s.wait_for(3));
  EXPECT_EQ(s.at(2).body, "3");
}

TEST(mem_backend, delayed_delivery_never_early_and_cancellable) {
  mem_backend b;
  sink s;
  subscribe(b, {"t", "a", 0, {}, 10}, s);
  const wall_time now = b.now();
  auto out = publish(b, {message{"t", {}, {}, "later", now + std::chrono::hours(24 * 7)},
                         message{"t", {}, {}, "cancelled", now + std::chrono::hours(1)}});
  EXPECT_EQ(b.scheduled_for_test(), 2u);
  status cancelled;
  b.cancel_scheduled(out[1].id, [&](status st) { cancelled = std::move(st); });
  EXPECT_TRUE(cancelled.ok());
  b.cancel_scheduled(out[1].id, [&](status st) { cancelled = std::move(st); });
  EXPECT_EQ(cancelled.error().code, errc::message_not_found);
  b.advance_for_test(std::chrono::hours(24 * 7) - 1s);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.size(), 0u);
  b.advance_for_test(1s);
  ASSERT_TRUE(s.wait_for(1));
  EXPECT_EQ(s.at(0).body, "later");
  b.cancel_scheduled(out[0].id, [&](status st) { cancelled = std::move(st); });
  EXPECT_EQ(cancelled.error().code, errc::message_not_scheduled);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.size(), 1u);
}

TEST(mem_backend, publish_filter_refuses_single_messages_and_health_follows_flag) {
  mem_backend b;
  b.set_publish_filter_for_test([](const message& m) {
    return m.body == "bad" ? status(error(errc::message_too_large, "too big")) : ok_status();
  });
  auto out = publish(b, {message{"t", {}, {}, "ok", {}}, message{"t", {}, {}, "bad", {}}});
  EXPECT_TRUE(out[0].outcome.ok());
  EXPECT_EQ(out[1].outcome.error().code, errc::message_too_large);
  EXPECT_EQ(b.published_for_test("t").size(), 1u);
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
