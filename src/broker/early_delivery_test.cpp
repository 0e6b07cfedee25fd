// Early delivery (the host's default): a message goes to its consumer as soon as
// its publish record is appended, while the publisher's confirm waits for the
// fsync. The log's syncs are held at a gate (over the fault-injecting
// mem_file_system), so each test sees deliveries before the sync, then lets the
// sync succeed, fail, or the machine "crash" with the unsynced bytes dropped.
#include <condition_variable>
#include <deque>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <optional>
#include <set>

#include "broker/gated_file_system_test_util.h"
#include "broker/host.h"
#include "io/mem_file_system.h"

namespace outrider::broker {
namespace {

using namespace std::chrono_literals;
constexpr auto generous = 20s;  // waits for something that must happen

class early_delivery : public ::testing::Test {
 protected:
  void TearDown() override {
    gate_.open_gate();
    host_.reset();
  }

  void open(bool deliver_after_fsync = false) {
    host_options o;
    o.data_dir = "data";
    o.checkpoint_at_stop = false;
    o.deliver_after_fsync = deliver_after_fsync;
    // The gate counts and holds every fdatasync: no segment written ahead on the
    // checkpoint thread (its sync would pass the gate in the test's place).
    o.log.prepare_segments = false;
    auto h = host::open(gate_, o);
    ASSERT_TRUE(h) << h.error().message;
    host_ = std::move(*h);
    host_->start();
  }

  // Power loss while a sync may be held: unsynced bytes are dropped, the held
  // sync then fails (its file is stale), and the host is stopped.
  void crash() {
    mem_.crash_for_test(io::crash_mode::drop_unsynced);
    gate_.open_gate();
    host_.reset();
  }

  template <class T, class F>
  T call(F&& start) {
    std::promise<T> p;
    start([&p](T v) { p.set_value(std::move(v)); });
    return p.get_future().get();
  }

  void declare(const std::string& q, queue_options o = {}) {
    auto s = call<status>([&](auto done) { host_->declare_queue(q, o, std::move(done)); });
    ASSERT_TRUE(s) << s.error().message;
  }

  static std::vector<publish_request> batch_of(const std::string& q,
                                               const std::vector<std::string>& bodies,
                                               std::optional<wall_time> deliver_at = {}) {
    std::vector<publish_request> batch;
    for (const auto& b : bodies) {
      publish_request r;
      r.destination = q;
      r.body = b;
      r.deliver_at = deliver_at;
      batch.push_back(std::move(r));
    }
    return batch;
  }

  // Publishes and waits for the confirm.
  void publish_confirmed(const std::string& q, const std::vector<std::string>& bodies) {
    auto results = call<std::vector<result<publish_receipt>>>(
        [&](auto done) { host_->publish(batch_of(q, bodies), std::move(done)); });
    for (auto& r : results) ASSERT_TRUE(r) << r.error().message;
  }

  // Publishes; the returned future is ready once the publish completes.
  std::future<std::vector<result<publish_receipt>>> publish_async(
      const std::string& q, const std::vector<std::string>& bodies,
      std::optional<wall_time> deliver_at = {}) {
    auto p = std::make_shared<std::promise<std::vector<result<publish_receipt>>>>();
    auto f = p->get_future();
    host_->publish(batch_of(q, bodies, deliver_at),
                   [p](std::vector<result<publish_receipt>> r) { p->set_value(std::move(r)); });
    return f;
  }

  // Runs after everything posted to the engine thread before it (and what
  // that work delivered): a barrier.
  void barrier() {
    (void)call<std::vector<std::pair<std::string, std::uint64_t>>>(
        [&](auto done) { host_->stats(std::move(done)); });
  }

  struct collector {
    std::mutex m;
    std::condition_variable cv;
    std::vector<delivery> got;
    std::vector<std::string> events;  // shared with publish completions in some tests
  };
  collector& new_collector() { return collectors_.emplace_back(); }

  consumer_id subscribe(const std::string& q, collector& c, std::uint32_t credit,
                        bool auto_ack = false) {
    host* h = host_.get();
    auto id = std::make_shared<consumer_id>(0);
    auto r = call<result<consumer_id>>([&](auto done) {
      host_->subscribe(
          q, credit,
          [h, &c, auto_ack, id](std::vector<delivery>&& batch) {
            std::vector<delivery_tag> tags;
            {
              std::lock_guard lock(c.m);
              for (auto& d : batch) {
                tags.push_back(d.tag);
                c.events.push_back("delivered " + d.msg.body);
                c.got.push_back(std::move(d));
              }
            }
            if (auto_ack) {  // posted before the test thread hears of the delivery
              auto n = static_cast<std::uint32_t>(tags.size());
              h->ack(std::move(tags), nullptr);
              h->add_credit(*id, n);
            }
            c.cv.notify_all();
          },
          [id, done = std::move(done)](result<consumer_id> got) mutable {
            if (got) *id = *got;  // engine thread, before any delivery
            done(std::move(got));
          });
    });
    EXPECT_TRUE(r) << r.error().message;
    return r.value_or(0);
  }

  bool wait_for(collector& c, std::size_t count) {
    std::unique_lock lock(c.m);
    return c.cv.wait_for(lock, generous, [&] { return c.got.size() >= count; });
  }
  std::vector<std::string> bodies(collector& c) {
    std::lock_guard lock(c.m);
    std::vector<std::string> out;
    for (const auto& d : c.got) out.push_back(d.msg.body);
    return out;
  }

  std::multiset<std::string> listed_bodies(const std::string& q) {
    auto r = call<result<std::vector<std::pair<message_info, message>>>>(
        [&](auto done) { host_->peek_messages(q, 100000, std::move(done)); });
    EXPECT_TRUE(r);
    std::multiset<std::string> out;
    if (r) {
      for (const auto& [info, m] : *r) out.insert(m.body);
    }
    return out;
  }

  io::mem_file_system mem_{11};
  gated_file_system gate_{mem_};
  std::deque<collector> collectors_;  // outlive the host (its sinks point here)
  std::unique_ptr<host> host_;
};

TEST_F(early_delivery, a_message_is_delivered_before_its_sync_and_confirmed_after_it) {
  open();
  declare("orders");
  collector& c = new_collector();
  subscribe("orders", c, 10);
  gate_.close_gate();
  const auto durable_before = host_->durable_end();
  auto confirm = publish_async("orders", {"a", "b"});
  ASSERT_TRUE(wait_for(c, 2));
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(confirm.wait_for(0s), std::future_status::timeout) << "confirmed before the sync";
  EXPECT_EQ(host_->durable_end(), durable_before);
  // Acked before durable: fine (the ack record follows the publish record).
  auto acked = call<std::vector<status>>([&](auto done) {
    host_->ack({c.got[0].tag, c.got[1].tag}, std::move(done));
  });
  for (auto& s : acked) EXPECT_TRUE(s) << s.error().message;
  gate_.open_gate();
  auto results = confirm.get();
  for (auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_LT(r->position, host_->durable_end());
  }
  // The acks reached the disk with (after) the publishes: nothing comes back.
  host_.reset();
  open();
  EXPECT_TRUE(listed_bodies("orders").empty());
}

TEST_F(early_delivery, a_failed_sync_fails_the_early_delivered_publish_and_delivers_nothing_more) {
  open();
  declare("orders");
  publish_confirmed("orders", {"confirmed"});
  collector& c = new_collector();
  const auto consumer = subscribe("orders", c, 2);
  ASSERT_TRUE(wait_for(c, 1));
  gate_.close_gate();
  auto confirm = publish_async("orders", {"early", "held back"});
  ASSERT_TRUE(wait_for(c, 2));  // "held back" waits for credit
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"confirmed", "early"}));
  ASSERT_TRUE(gate_.wait_for_held_sync());
  gate_.open_gate(/*fail=*/true);
  // The publisher is never confirmed: it will publish again (a duplicate for
  // the consumer that saw "early", never a loss).
  for (auto& r : confirm.get()) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::io_error);
  }
  // The broker refuses work until restarted, and delivers nothing past the
  // durable end any more, even with credit to spare.
  auto refused =
      call<std::vector<status>>([&](auto done) { host_->ack({c.got[1].tag}, std::move(done)); });
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_EQ(refused[0].error().code, errc::io_error);
  auto more = call<std::vector<result<publish_receipt>>>(
      [&](auto done) { host_->publish(batch_of("orders", {"late"}), std::move(done)); });
  EXPECT_EQ(more[0].error().code, errc::io_error);
  ASSERT_TRUE(call<status>([&](auto done) { host_->add_credit(consumer, 5, std::move(done)); }));
  barrier();
  EXPECT_EQ(bodies(c).size(), 2U) << "delivered past the durable end after a failed sync";
  // Power loss: what the failed sync did not write is gone; what was confirmed is there.
  crash();
  open();
  EXPECT_EQ(listed_bodies("orders"), (std::multiset<std::string>{"confirmed"}));
}

TEST_F(early_delivery, a_crash_before_the_sync_loses_only_what_was_never_confirmed) {
  open();
  declare("orders");
  std::vector<std::string> confirmed;
  for (int i = 0; i < 20; ++i) confirmed.push_back("c" + std::to_string(i));
  publish_confirmed("orders", confirmed);
  gate_.close_gate();
  collector& c = new_collector();
  subscribe("orders", c, 100, /*auto_ack=*/true);
  auto confirm = publish_async("orders", {"u0", "u1", "u2"});
  ASSERT_TRUE(wait_for(c, 23));  // all delivered (and acked) before any sync
  barrier();                     // the acks are appended
  EXPECT_EQ(confirm.wait_for(0s), std::future_status::timeout);
  crash();
  for (auto& r : confirm.get()) EXPECT_FALSE(r) << "confirmed without a sync";
  open();
  // Every confirmed message is back (its ack was not durable: a redelivery);
  // the unconfirmed ones, delivered early, are gone with their acks.
  EXPECT_EQ(listed_bodies("orders"),
            std::multiset<std::string>(confirmed.begin(), confirmed.end()));
}

TEST_F(early_delivery, with_deliver_after_fsync_a_delivery_waits_for_the_sync) {
  open(/*deliver_after_fsync=*/true);
  declare("orders");
  collector& c = new_collector();
  subscribe("orders", c, 10);
  gate_.close_gate();
  auto confirm = publish_async("orders", {"a"});
  ASSERT_TRUE(gate_.wait_for_held_sync());
  barrier();
  EXPECT_TRUE(bodies(c).empty()) << "delivered before its publish record was durable";
  gate_.open_gate();
  for (auto& r : confirm.get()) ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(wait_for(c, 1));
  EXPECT_EQ(bodies(c), (std::vector<std::string>{"a"}));
}

TEST_F(early_delivery, past_due_and_zero_delays_go_early_and_future_ones_wait_for_their_time) {
  open();
  declare("orders");
  collector& c = new_collector();
  subscribe("orders", c, 10);
  gate_.close_gate();
  const auto now = std::chrono::system_clock::now();
  auto past = publish_async("orders", {"past due"}, now - 1h);
  auto zero = publish_async("orders", {"due now"}, now);
  auto later = publish_async("orders", {"in an hour"}, now + 1h);
  ASSERT_TRUE(wait_for(c, 2));
  barrier();
  auto got = bodies(c);
  EXPECT_EQ(std::multiset<std::string>(got.begin(), got.end()),
            (std::multiset<std::string>{"past due", "due now"}));
  EXPECT_EQ(past.wait_for(0s), std::future_status::timeout);
  gate_.open_gate();
  EXPECT_TRUE(past.get()[0]);
  EXPECT_TRUE(zero.get()[0]);
  EXPECT_TRUE(later.get()[0]);
  barrier();
  EXPECT_EQ(bodies(c).size(), 2U) << "a delayed message came early";
}

TEST_F(early_delivery, nack_and_lease_expiry_of_a_message_not_yet_durable_redeliver_it) {
  open();
  queue_options short_lease;
  short_lease.lease = 200ms;
  short_lease.max_attempts = 0;  // redelivered until settled, never dead-lettered
  declare("orders", short_lease);
  collector& c = new_collector();
  subscribe("orders", c, 10);
  gate_.close_gate();
  auto confirm = publish_async("orders", {"a"});
  ASSERT_TRUE(wait_for(c, 1));
  auto nacked =
      call<status>([&](auto done) { host_->nack(c.got[0].tag, 0ns, false, std::move(done)); });
  ASSERT_TRUE(nacked) << nacked.error().message;
  ASSERT_TRUE(wait_for(c, 2));  // redelivered at once, still before any sync
  EXPECT_EQ(c.got[1].attempt, 2U);
  ASSERT_TRUE(wait_for(c, 3));  // its lease runs out unsettled: delivered again
  EXPECT_EQ(c.got[2].attempt, 3U);
  EXPECT_EQ(confirm.wait_for(0s), std::future_status::timeout);
  gate_.open_gate();
  for (auto& r : confirm.get()) ASSERT_TRUE(r) << r.error().message;
  // The failed attempts were journaled after the publish and are durable with it.
  barrier();
  ASSERT_TRUE(call<status>([&](auto done) { host_->checkpoint(std::move(done)); }));
  host_.reset();
  open();
  auto infos = call<result<std::vector<message_info>>>(
      [&](auto done) { host_->list_messages("orders", 10, std::move(done)); });
  ASSERT_TRUE(infos);
  ASSERT_EQ(infos->size(), 1U);
  EXPECT_GE((*infos)[0].failed_attempts, 2U);
}

TEST_F(early_delivery, a_checkpoint_is_not_installed_past_the_durable_end) {
  open();
  declare("orders");
  publish_confirmed("orders", {"confirmed"});
  collector& c = new_collector();
  subscribe("orders", c, 10, /*auto_ack=*/true);
  ASSERT_TRUE(wait_for(c, 1));
  barrier();
  gate_.close_gate();
  auto confirm = publish_async("orders", {"early"});
  ASSERT_TRUE(wait_for(c, 2));
  barrier();  // delivered and acked, none of it durable
  auto checkpointed = std::make_shared<std::promise<status>>();
  host_->checkpoint([checkpointed](status s) { checkpointed->set_value(std::move(s)); });
  ASSERT_TRUE(gate_.wait_for_held_sync());
  barrier();
  EXPECT_EQ(checkpointed->get_future().wait_for(0s), std::future_status::timeout)
      << "a checkpoint describing records that are not durable was installed";
  crash();
  open();
  // "confirmed" was acked (maybe not durably: then it is back); "early" never
  // reached the disk, so neither it nor its ack is there.
  auto left = listed_bodies("orders");
  EXPECT_EQ(left.count("early"), 0U);
  EXPECT_LE(left.count("confirmed"), 1U);
}

}  // namespace
}  // namespace outrider::broker
