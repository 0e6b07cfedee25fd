// Semantic tests of the broker engine: simulated time (plain `now` values),
// mem_journal and the in-memory timing wheel. The broker_semantics tests are
// the seed of the messaging conformance suite (DESIGN.md): each states one
// rule every backend must obey.
#include "broker/engine.h"

#include <gtest/gtest.h>
#include <set>

#include "timing/timing_wheel.h"

namespace outrider::broker {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::int64_t ns_of(wall_time t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

class broker_semantics : public ::testing::Test {
 protected:
  void SetUp() override {
    open();
    queue_options q;
    q.max_attempts = 3;
    q.lease = seconds(30);
    ASSERT_TRUE(engine_->declare_queue("orders", q));
  }

  void open() {
    timing::timing_wheel_options w;
    w.start_ns = ns_of(now_);
    wheel_ = std::make_unique<timing::timing_wheel>(w);
    auto e = engine::open(journal_, *wheel_, options_);
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
  }
  // A crash and restart: only the journal survives.
  void restart() {
    engine_.reset();
    open();
  }

  id128 publish(const std::string& destination, const std::string& body,
                std::optional<nanoseconds> delay = std::nullopt) {
    publish_request r;
    r.destination = destination;
    r.body = body;
    r.headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    if (delay) r.deliver_at = now_ + *delay;
    auto receipt = engine_->publish(std::move(r), now_);
    EXPECT_TRUE(receipt) << receipt.error().message;
    return receipt ? receipt->id : id128{};
  }

  consumer_id subscribe(const std::string& queue, std::uint32_t credit) {
    auto c = engine_->subscribe(queue, credit);
    EXPECT_TRUE(c);
    return c.value_or(0);
  }

  std::vector<delivery> take(std::size_t max = 1000) {
    std::vector<delivery> out;
    auto s = engine_->dispatch(now_, max, out);
    EXPECT_TRUE(s) << s.error().message;
    return out;
  }

  // Moves time forward the way an owner does: to each wakeup in turn.
  void advance(nanoseconds d) {
    const wall_time end = now_ + d;
    for (auto w = engine_->next_wakeup(); w && *w <= end; w = engine_->next_wakeup()) {
      if (*w > now_) now_ = *w;
      ASSERT_TRUE(engine_->tick(now_));
      if (engine_->next_wakeup() == w) break;  // a lower bound that fired nothing
    }
    now_ = end;
    ASSERT_TRUE(engine_->tick(now_));
  }

  std::size_t ready(const std::string& queue) { return engine_->stats(queue)->ready; }

  wall_time now_ = simulated_clock::default_start();
  engine_options options_;
  mem_journal journal_;
  std::unique_ptr<timing::timing_wheel> wheel_;
  std::unique_ptr<engine> engine_;
};

TEST_F(broker_semantics, publish_consume_ack) {
  const id128 id = publish("orders", "hello");
  const consumer_id c = subscribe("orders", 10);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].consumer, c);
  EXPECT_EQ(d[0].msg.id, id);
  EXPECT_EQ(d[0].msg.body, "hello");
  EXPECT_EQ(d[0].msg.headers.at("traceparent").substr(0, 3), "00-");
  EXPECT_EQ(d[0].attempt, 1U);
  EXPECT_EQ(d[0].lease_expires_at, now_ + seconds(30));
  EXPECT_EQ(engine_->stats("orders")->leased, 1U);
  ASSERT_TRUE(engine_->ack(d[0].tag, now_));
  EXPECT_EQ(engine_->stats("orders")->leased, 0U);
  advance(hours(1));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(engine_->lowest_live_message_position(), std::nullopt);
}

TEST_F(broker_semantics, messages_not_yet_durable_are_not_delivered) {
  publish("orders", "first");
  const std::uint64_t durable = journal_.end_position();  // as if a sync covered "first"
  publish("orders", "second");
  subscribe("orders", 10);
  std::vector<delivery> out;
  ASSERT_TRUE(engine_->dispatch(now_, 100, out, durable));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].msg.body, "first");
  out.clear();
  ASSERT_TRUE(engine_->dispatch(now_, 100, out, durable));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(engine_->dispatch(now_, 100, out, journal_.end_position()));  // the next sync
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].msg.body, "second");
}

TEST_F(broker_semantics, dead_letter_now_skips_remaining_attempts) {
  const id128 id = publish("orders", "unprocessable");
  subscribe("orders", 10);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  ASSERT_TRUE(engine_->dead_letter(d[0].tag, now_));
  EXPECT_EQ(ready("orders.dlq"), 1U);
  EXPECT_EQ(engine_->list("orders.dlq", 10)->at(0).id, id);
  restart();
  EXPECT_EQ(ready("orders.dlq"), 1U);
  EXPECT_EQ(ready("orders"), 0U);
  const consumer_id dlq_consumer = subscribe("orders.dlq", 1);
  auto again = take();
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].consumer, dlq_consumer);
  auto r = engine_->dead_letter(again[0].tag, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::failed_precondition);
}

TEST_F(broker_semantics, delivery_order_is_publish_order) {
  for (int i = 0; i < 5; ++i) publish("orders", std::to_string(i));
  subscribe("orders", 100);
  auto d = take();
  ASSERT_EQ(d.size(), 5U);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d[i].msg.body, std::to_string(i));
}

TEST_F(broker_semantics, competing_consumers_share_fairly_within_credit) {
  const consumer_id a = subscribe("orders", 3);
  const consumer_id b = subscribe("orders", 3);
  for (int i = 0; i < 10; ++i) publish("orders", std::to_string(i));
  auto d = take();
  ASSERT_EQ(d.size(), 6U);  // credit 3 each
  for (std::size_t i = 0; i < d.size(); ++i) EXPECT_EQ(d[i].consumer, i % 2 == 0 ? a : b);
  EXPECT_TRUE(take().empty());
  ASSERT_TRUE(engine_->ack(d[1].tag, now_));  // frees one of b's credits
  auto more = take();
  ASSERT_EQ(more.size(), 1U);
  EXPECT_EQ(more[0].consumer, b);
  EXPECT_EQ(more[0].msg.body, "6");
  ASSERT_TRUE(engine_->set_credit(a, 5));
  EXPECT_EQ(take().size(), 2U);
}

TEST_F(broker_semantics, topics_fan_out_to_each_subscription) {
  ASSERT_TRUE(engine_->declare_topic("order-placed"));
  auto billing = engine_->declare_subscription("order-placed", "billing");
  auto shipping = engine_->declare_subscription("order-placed", "shipping");
  ASSERT_TRUE(billing && shipping);
  EXPECT_EQ(*billing, "order-placed.billing");
  const id128 id = publish("order-placed", "o-1");
  EXPECT_EQ(ready(*billing), 1U);
  EXPECT_EQ(ready(*shipping), 1U);
  // Two instances of billing compete for its one copy.
  subscribe(*billing, 10);
  subscribe(*billing, 10);
  const consumer_id s = subscribe(*shipping, 10);
  auto d = take();
  ASSERT_EQ(d.size(), 2U);
  std::set<std::string> queues;
  for (const auto& x : d) {
    EXPECT_EQ(x.msg.id, id);
    queues.insert(x.queue);
    if (x.queue == *shipping) {
      EXPECT_EQ(x.consumer, s);
    }
  }
  EXPECT_EQ(queues, (std::set<std::string>{*billing, *shipping}));
  // Acking one subscription's copy leaves the other's.
  ASSERT_TRUE(engine_->ack(d[0].tag, now_));
  EXPECT_EQ(engine_->stats(d[1].queue)->leased, 1U);
}

TEST_F(broker_semantics, topic_without_subscriptions_accepts_and_drops) {
  ASSERT_TRUE(engine_->declare_topic("audit"));
  auto r = engine_->publish(publish_request{.destination = "audit", .body = "x"}, now_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->queues, 0U);
}

TEST_F(broker_semantics, lease_expiry_redelivers_with_the_attempt_count) {
  publish("orders", "slow");
  subscribe("orders", 1);
  auto first = take();
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(engine_->next_wakeup(), now_ + seconds(30));
  advance(seconds(29));
  EXPECT_TRUE(take().empty());
  advance(seconds(1));
  auto second = take();
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0].attempt, 2U);
  EXPECT_NE(second[0].tag, first[0].tag);
  auto late = engine_->ack(first[0].tag, now_);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, errc::delivery_not_found);
}

TEST_F(broker_semantics, ack_after_the_lease_deadline_fails_even_before_tick) {
  publish("orders", "x");
  subscribe("orders", 1);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  now_ += seconds(30);  // no tick
  EXPECT_EQ(engine_->ack(d[0].tag, now_).error().code, errc::delivery_not_found);
  auto again = take();
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].attempt, 2U);
}

TEST_F(broker_semantics, nack_with_delay_is_never_early) {
  publish("orders", "retry-me");
  subscribe("orders", 10);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  ASSERT_TRUE(engine_->nack(d[0].tag, now_, seconds(10)));
  EXPECT_EQ(engine_->stats("orders")->retry_wait, 1U);
  advance(seconds(10) - milliseconds(1));
  EXPECT_TRUE(take().empty());
  advance(milliseconds(1));
  auto again = take();
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].attempt, 2U);
  EXPECT_EQ(engine_->nack(again[0].tag, now_, nanoseconds(-1)).error().code,
            errc::invalid_argument);
}

TEST_F(broker_semantics, max_attempts_moves_to_the_dead_letter_queue_and_back) {
  const id128 id = publish("orders", "poison");
  const consumer_id c = subscribe("orders", 10);
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto d = take();
    ASSERT_EQ(d.size(), 1U) << attempt;
    EXPECT_EQ(d[0].attempt, attempt);
    ASSERT_TRUE(engine_->nack(d[0].tag, now_));
  }
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(engine_->stats("orders")->ready, 0U);
  EXPECT_EQ(engine_->stats("orders")->dead_letter_queue, "orders.dlq");
  auto listed = engine_->list("orders.dlq", 10);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ((*listed)[0].id, id);
  EXPECT_EQ((*listed)[0].failed_attempts, 3U);
  EXPECT_EQ((*listed)[0].origin_queue, "orders");
  auto peeked = engine_->peek("orders.dlq", id);
  ASSERT_TRUE(peeked);
  EXPECT_EQ(peeked->body, "poison");
  EXPECT_EQ(engine_->stats("orders.dlq")->ready, 1U);  // peek changes nothing

  auto replayed = engine_->replay_dead_letters("orders.dlq", 10);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(*replayed, 1U);
  EXPECT_EQ(engine_->stats("orders.dlq")->ready, 0U);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].consumer, c);
  EXPECT_EQ(d[0].attempt, 1U);  // attempts reset by replay
  EXPECT_EQ(engine_->replay_dead_letter("orders.dlq", id).error().code, errc::message_not_found);
}

TEST_F(broker_semantics, release_redelivers_at_once_without_counting_an_attempt) {
  publish("orders", "given-back");
  subscribe("orders", 10);
  // More releases than max_attempts (3): never dead-lettered, attempt stays 1.
  for (int i = 0; i < 5; ++i) {
    auto d = take();
    ASSERT_EQ(d.size(), 1U) << i;
    EXPECT_EQ(d[0].attempt, 1U);
    ASSERT_TRUE(engine_->release(d[0].tag, now_));
    EXPECT_EQ(engine_->release(d[0].tag, now_).error().code, errc::delivery_not_found);
  }
  EXPECT_EQ(engine_->stats("orders.dlq")->ready, 0U);
  // A real failure after the releases counts as the first one, across a restart.
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  ASSERT_TRUE(engine_->nack(d[0].tag, now_));
  restart();
  subscribe("orders", 10);
  d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].attempt, 2U);
  ASSERT_TRUE(engine_->release(d[0].tag, now_));
  restart();
  subscribe("orders", 10);
  d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].attempt, 2U);
}

TEST_F(broker_semantics, graceful_unsubscribe_releases_and_a_lost_consumer_counts) {
  publish("orders", "in-flight");
  consumer_id c = subscribe("orders", 10);
  ASSERT_EQ(take().size(), 1U);
  ASSERT_TRUE(engine_->unsubscribe(c, true));  // graceful: not an attempt
  c = subscribe("orders", 10);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].attempt, 1U);
  ASSERT_TRUE(engine_->unsubscribe(c));  // gone (connection lost): a failed attempt
  subscribe("orders", 10);
  d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].attempt, 2U);
}

TEST_F(broker_semantics, lease_expiries_count_toward_dead_lettering) {
  publish("orders", "hangs-the-consumer");
  subscribe("orders", 1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(take().size(), 1U);
    advance(seconds(30));
  }
  EXPECT_EQ(engine_->stats("orders.dlq")->ready, 1U);
}

TEST_F(broker_semantics, a_poison_message_never_blocks_the_others) {
  const id128 poison = publish("orders", "poison");
  for (int i = 0; i < 4; ++i) publish("orders", "good");
  subscribe("orders", 1);  // one in flight at a time: the worst case
  std::size_t good = 0;
  for (int round = 0; round < 20 && good < 4; ++round) {
    auto d = take();
    if (d.empty()) {
      advance(seconds(1));
      continue;
    }
    if (d[0].msg.id == poison) {
      ASSERT_TRUE(engine_->nack(d[0].tag, now_, seconds(5)));
    } else {
      ++good;
      ASSERT_TRUE(engine_->ack(d[0].tag, now_));
    }
  }
  EXPECT_EQ(good, 4U);
}

TEST_F(broker_semantics, delayed_seven_days_is_never_early_and_fires_on_time) {
  subscribe("orders", 10);
  const wall_time due = now_ + hours(24 * 7);
  const id128 id = publish("orders", "expire-reservation", hours(24 * 7));
  EXPECT_EQ(engine_->stats("orders")->scheduled, 1U);
  EXPECT_EQ(engine_->scheduled_count(), 1U);
  for (int step = 0; step < 7 * 24; ++step) {
    advance(hours(1) - (step == 7 * 24 - 1 ? nanoseconds(1) : nanoseconds(0)));
    ASSERT_TRUE(take().empty()) << "early at hour " << step;
  }
  EXPECT_EQ(now_, due - nanoseconds(1));
  advance(nanoseconds(1));
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].msg.id, id);
  EXPECT_EQ(d[0].msg.deliver_at, due);
  EXPECT_EQ(engine_->stats("orders")->scheduled, 0U);
}

TEST_F(broker_semantics, cancel_a_scheduled_message) {
  subscribe("orders", 10);
  const id128 id = publish("orders", "expire", hours(24 * 7));
  auto c = engine_->cancel(id);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(engine_->scheduled_count(), 0U);
  EXPECT_EQ(engine_->stats("orders")->scheduled, 0U);
  EXPECT_EQ(engine_->cancel(id).error().code, errc::message_not_found);  // already gone
  advance(hours(24 * 8));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(engine_->lowest_live_message_position(), std::nullopt);
}

TEST_F(broker_semantics, cancel_unknown_or_already_due) {
  EXPECT_EQ(engine_->cancel(id128{1, 2}).error().code, errc::message_not_found);
  const id128 ready_id = publish("orders", "now");
  EXPECT_EQ(engine_->cancel(ready_id).error().code, errc::message_not_scheduled);
  const std::size_t records = journal_.record_count();
  EXPECT_FALSE(engine_->cancel(id128{3, 4}));
  EXPECT_EQ(journal_.record_count(), records);  // no tombstone for an unknown id
}

TEST_F(broker_semantics, scheduled_message_can_be_peeked_before_it_is_due) {
  const id128 id = publish("orders", "later", hours(1));
  auto m = engine_->peek("orders", id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "later");
  EXPECT_EQ(engine_->peek("orders.dlq", id).error().code, errc::message_not_found);
}

TEST_F(broker_semantics, restart_recovers_everything) {
  ASSERT_TRUE(engine_->declare_topic("events"));
  ASSERT_TRUE(engine_->declare_subscription("events", "audit"));
  const id128 acked = publish("orders", "acked");
  const id128 leased = publish("orders", "leased");
  const id128 ready_id = publish("orders", "ready");
  const id128 delayed = publish("orders", "delayed", hours(48));
  const id128 cancelled = publish("orders", "cancelled", hours(24));
  const id128 retry = publish("orders", "retry");
  const id128 dead = publish("orders", "dead");
  const id128 fanned = publish("events", "fanned");
  ASSERT_TRUE(engine_->cancel(cancelled));
  const consumer_id c = subscribe("orders", 100);
  auto d = take();
  ASSERT_EQ(d.size(), 5U);
  std::map<id128, delivery_tag> tags;
  for (const auto& x : d) tags[x.msg.id] = x.tag;
  ASSERT_TRUE(engine_->ack(tags[acked], now_));
  ASSERT_TRUE(engine_->nack(tags[retry], now_, hours(1)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine_->nack(tags[dead], now_));
    if (i < 2) {
      for (auto& x : take()) {
        if (x.msg.id == dead) tags[dead] = x.tag;
      }
    }
  }
  (void)c;
  (void)leased;

  restart();
  EXPECT_EQ(engine_->queue_names(),
            (std::vector<std::string>{"events.audit", "events.audit.dlq", "orders", "orders.dlq"}));
  auto s = engine_->stats("orders");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ready, 2U);  // leased + ready, in publish order
  EXPECT_EQ(s->leased, 0U);
  EXPECT_EQ(s->retry_wait, 1U);
  EXPECT_EQ(s->scheduled, 1U);
  EXPECT_EQ(engine_->scheduled_count(), 1U);
  EXPECT_EQ(ready("orders.dlq"), 1U);
  EXPECT_EQ(engine_->list("orders.dlq", 10)->at(0).id, dead);
  EXPECT_EQ(engine_->list("orders.dlq", 10)->at(0).origin_queue, "orders");
  EXPECT_EQ(ready("events.audit"), 1U);
  EXPECT_EQ(engine_->cancel(cancelled).error().code, errc::message_not_found);

  subscribe("orders", 100);
  auto after = take();
  ASSERT_EQ(after.size(), 2U);
  EXPECT_EQ(after[0].msg.id, leased);
  EXPECT_EQ(after[1].msg.id, ready_id);
  for (const auto& x : after) ASSERT_TRUE(engine_->ack(x.tag, now_));
  advance(hours(1));
  auto retried = take();
  ASSERT_EQ(retried.size(), 1U);
  EXPECT_EQ(retried[0].msg.id, retry);
  EXPECT_EQ(retried[0].attempt, 2U);  // the failed attempt survived the restart
  ASSERT_TRUE(engine_->ack(retried[0].tag, now_));
  advance(hours(47) - nanoseconds(1));
  EXPECT_TRUE(take().empty());
  advance(nanoseconds(1));
  auto fired = take();
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_EQ(fired[0].msg.id, delayed);
  ASSERT_TRUE(engine_->ack(fired[0].tag, now_));
  advance(hours(24 * 30));
  EXPECT_TRUE(take().empty());
  (void)fanned;
}

TEST_F(broker_semantics, restart_after_a_scheduled_message_fired_and_was_acked) {
  const id128 fired_acked = publish("orders", "a", hours(1));
  const id128 fired_pending = publish("orders", "b", hours(1));
  subscribe("orders", 10);
  advance(hours(1));
  auto d = take();
  ASSERT_EQ(d.size(), 2U);
  for (const auto& x : d) {
    if (x.msg.id == fired_acked) {
      ASSERT_TRUE(engine_->ack(x.tag, now_));
    }
  }
  restart();
  // The acked one was placed (and removed) when replay met its ack; the other
  // is due again and fires on the first tick.
  EXPECT_EQ(engine_->scheduled_count(), 1U);
  subscribe("orders", 10);
  advance(nanoseconds(0));
  EXPECT_EQ(engine_->scheduled_count(), 0U);
  auto again = take();
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].msg.id, fired_pending);
  ASSERT_TRUE(engine_->ack(again[0].tag, now_));
  advance(hours(24));
  EXPECT_TRUE(take().empty());
}

TEST_F(broker_semantics, past_due_scheduled_messages_fire_right_after_recovery) {
  publish("orders", "due-while-down", std::chrono::minutes(30));
  restart();
  now_ += hours(2);  // the broker was down past the due time
  subscribe("orders", 10);
  EXPECT_LE(engine_->next_wakeup().value(), now_);
  ASSERT_TRUE(engine_->tick(now_));
  EXPECT_EQ(take().size(), 1U);
}

TEST_F(broker_semantics, body_too_large_is_refused_clearly) {
  const std::string limit(default_max_body_bytes, 'x');
  EXPECT_TRUE(engine_->publish(publish_request{.destination = "orders", .body = limit}, now_));
  auto r = engine_->publish(publish_request{.destination = "orders", .body = limit + "x"}, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::message_too_large);
  EXPECT_NE(r.error().message.find("1048576"), std::string::npos);
  EXPECT_EQ(r.error().info().http_status, 413);
}

TEST_F(broker_semantics, unknown_queue_and_unknown_delivery) {
  auto r = engine_->publish(publish_request{.destination = "nope", .body = "x"}, now_);
  EXPECT_EQ(r.error().code, errc::queue_not_found);
  EXPECT_EQ(engine_->subscribe("nope", 1).error().code, errc::queue_not_found);
  EXPECT_EQ(engine_->ack(12345, now_).error().code, errc::delivery_not_found);
  EXPECT_EQ(engine_->nack(12345, now_).error().code, errc::delivery_not_found);
  EXPECT_EQ(engine_->bind("nope", "orders").error().code, errc::topic_not_found);
  EXPECT_EQ(engine_->unsubscribe(999).error().code, errc::consumer_not_found);
  EXPECT_EQ(engine_->subscribe("orders", 0).error().code, errc::invalid_argument);
}

TEST_F(broker_semantics, duplicate_pending_id_is_refused) {
  publish_request r{.destination = "orders", .id = id128{7, 7}, .body = "x"};
  ASSERT_TRUE(engine_->publish(r, now_));
  EXPECT_EQ(engine_->publish(r, now_).error().code, errc::already_exists);
  publish_request later{.destination = "orders", .id = id128{8, 8}, .body = "y"};
  later.deliver_at = now_ + hours(1);
  ASSERT_TRUE(engine_->publish(later, now_));
  EXPECT_EQ(engine_->publish(later, now_).error().code, errc::already_exists);
}

TEST_F(broker_semantics, a_failed_append_changes_nothing) {
  journal_.fail_appends_for_test(true);
  auto r = engine_->publish(publish_request{.destination = "orders", .body = "x"}, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::disk_full);
  EXPECT_EQ(ready("orders"), 0U);
  journal_.fail_appends_for_test(false);
  publish("orders", "y");
  subscribe("orders", 1);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  journal_.fail_appends_for_test(true);
  EXPECT_FALSE(engine_->ack(d[0].tag, now_));
  EXPECT_EQ(engine_->stats("orders")->leased, 1U);  // still leased; ack can be retried
  journal_.fail_appends_for_test(false);
  EXPECT_TRUE(engine_->ack(d[0].tag, now_));
}

TEST_F(broker_semantics, unsubscribe_returns_in_flight_messages) {
  publish("orders", "x");
  const consumer_id a = subscribe("orders", 1);
  ASSERT_EQ(take().size(), 1U);
  ASSERT_TRUE(engine_->unsubscribe(a));
  subscribe("orders", 1);
  auto d = take();
  ASSERT_EQ(d.size(), 1U);
  EXPECT_EQ(d[0].attempt, 2U);
}

TEST_F(broker_semantics, redeclare_is_idempotent_and_conflicts_are_refused) {
  queue_options q;
  q.max_attempts = 3;
  EXPECT_TRUE(engine_->declare_queue("orders", q));
  q.max_attempts = 4;
  EXPECT_EQ(engine_->declare_queue("orders", q).error().code, errc::already_exists);
  EXPECT_EQ(engine_->declare_topic("orders").error().code, errc::already_exists);
  EXPECT_EQ(engine_->declare_queue("bad name").error().code, errc::invalid_argument);
}

// Reclamation: what the owner may drop, and that dropping it loses nothing.
TEST(broker_reclamation, drop_below_lowest_live_then_restart) {
  mem_journal journal;
  wall_time now = simulated_clock::default_start();
  engine_options options;
  options.reclaim_bucket_shift = 0;  // exact positions
  auto wheel = std::make_unique<timing::timing_wheel>();
  auto e = engine::open(journal, *wheel, options);
  ASSERT_TRUE(e);
  auto& engine = **e;
  ASSERT_TRUE(engine.declare_queue("q"));
  std::vector<publish_receipt> receipts;
  for (int i = 0; i < 10; ++i) {
    receipts.push_back(*engine.publish(publish_request{.destination = "q", .body = "m"}, now));
  }
  publish_request later{.destination = "q", .body = "scheduled"};
  later.deliver_at = now + std::chrono::hours(24);
  const auto scheduled = *engine.publish(later, now);
  const consumer_id c = *engine.subscribe("q", 8);
  std::vector<delivery> d;
  ASSERT_TRUE(engine.dispatch(now, 100, d));
  ASSERT_EQ(d.size(), 8U);
  for (const auto& x : d) ASSERT_TRUE(engine.ack(x.tag, now));
  EXPECT_EQ(engine.lowest_live_message_position(), receipts[8].position);
  EXPECT_LT(*engine.lowest_live_position(), receipts[0].position);  // topology pins the start
  ASSERT_TRUE(engine.rejournal_topology_below(*engine.lowest_live_message_position()));
  EXPECT_EQ(engine.lowest_live_position(), receipts[8].position);
  journal.remove_before(*engine.lowest_live_position());
  (void)c;

  e->reset();
  wheel = std::make_unique<timing::timing_wheel>();
  auto reopened = engine::open(journal, *wheel, options);
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_EQ((*reopened)->stats("q")->ready, 2U);
  EXPECT_EQ((*reopened)->stats("q")->scheduled, 1U);
  EXPECT_EQ((*reopened)->lowest_live_message_position(), receipts[8].position);
  EXPECT_LT(receipts[8].position, scheduled.position);
}

TEST(broker_engine, open_rejects_a_corrupt_record) {
  mem_journal journal;
  ASSERT_TRUE(journal.append(static_cast<std::uint8_t>(record_type::publish), "\x01garbage"));
  timing::timing_wheel wheel;
  auto e = engine::open(journal, wheel);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, errc::data_corruption);
  mem_journal unknown;
  ASSERT_TRUE(unknown.append(99, "\x01"));
  EXPECT_EQ(engine::open(unknown, wheel).error().code, errc::data_corruption);
}

}  // namespace
}  // namespace outrider::broker
