// Group commit in the host: the sync thread starts the next sync as soon as one
// returns (no round trip through the engine thread), confirms follow each sync
// that covers them, and a failure, a crash or a stop while a second sync is
// pending keeps the durability contract (a confirm only after an fdatasync that
// covers the record). The log's syncs are held at a gate over mem_file_system;
// the engine runs on a context of the test's own, so a test can hold it too.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <set>
#include <thread>

#include "broker/gated_file_system_test_util.h"
#include "broker/host.h"
#include "io/mem_file_system.h"

namespace outrider::broker {
namespace {

using namespace std::chrono_literals;
using publish_results = std::vector<result<publish_receipt>>;

class group_commit : public ::testing::Test {
 protected:
  void SetUp() override {
    runner_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    gate_.open_gate();
    host_.reset();
    guard_.reset();
    runner_.join();
  }

  void open(std::uint64_t immediate_sync_bytes = host_options{}.immediate_sync_bytes) {
    host_options o;
    o.data_dir = "data";
    o.immediate_sync_bytes = immediate_sync_bytes;
    o.unawaited_sync_delay = unawaited_sync_delay_;
    o.checkpoint_at_stop = false;
    // The gate counts and holds every fdatasync: no segment written ahead on the
    // checkpoint thread (its sync would pass the gate in the test's place).
    o.log.prepare_segments = false;
    o.engine_context = &ctx_;
    auto h = host::open(gate_, o);
    ASSERT_TRUE(h) << h.error().message;
    host_ = std::move(*h);
    host_->start();
  }

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

  std::future<publish_results> publish_async(const std::string& q, const std::string& body) {
    std::vector<publish_request> batch(1);
    batch[0].destination = q;
    batch[0].body = body;
    auto p = std::make_shared<std::promise<publish_results>>();
    auto f = p->get_future();
    host_->publish(std::move(batch), [p](publish_results r) { p->set_value(std::move(r)); });
    return f;
  }

  // Runs after everything posted to the engine before it: a barrier.
  void barrier() {
    (void)call<std::vector<std::pair<std::string, std::uint64_t>>>(
        [&](auto done) { host_->stats(std::move(done)); });
  }

  // Holds the engine thread until the returned promise is set.
  std::shared_ptr<std::promise<void>> hold_engine() {
    auto release = std::make_shared<std::promise<void>>();
    std::promise<void> held;
    boost::asio::post(ctx_, [&held, gate = release->get_future().share()] {
      held.set_value();
      gate.wait();
    });
    held.get_future().wait();
    return release;
  }

  std::multiset<std::string> listed_bodies(const std::string& q) {
    auto r = call<result<std::vector<std::pair<message_info, message>>>>(
        [&](auto done) { host_->peek_messages(q, 1000, std::move(done)); });
    EXPECT_TRUE(r);
    std::multiset<std::string> out;
    if (r) {
      for (const auto& [info, m] : *r) out.insert(m.body);
    }
    return out;
  }

  // `a` is appended and its sync held at the gate; then `b` is appended while
  // that sync is in flight. Returns their futures; syncs so far: `first_sync`.
  std::pair<std::future<publish_results>, std::future<publish_results>> two_publishes_one_sync_held(
      int& first_sync) {
    gate_.close_gate();
    first_sync = gate_.arrivals() + 1;
    auto a = publish_async("orders", "a");
    EXPECT_TRUE(gate_.wait_for_arrivals(first_sync));
    auto b = publish_async("orders", "b");
    barrier();  // "b" is appended
    EXPECT_EQ(a.wait_for(0s), std::future_status::timeout) << "confirmed before its sync";
    EXPECT_EQ(b.wait_for(0s), std::future_status::timeout) << "confirmed before its sync";
    return {std::move(a), std::move(b)};
  }

  boost::asio::io_context ctx_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      ctx_.get_executor()};
  std::thread runner_;
  io::mem_file_system mem_{17};
  gated_file_system gate_{mem_};
  std::unique_ptr<host> host_;
  nanoseconds unawaited_sync_delay_ = host_options{}.unawaited_sync_delay;

  // Publishes "x", takes its delivery (credit 1) and returns its tag.
  delivery_tag publish_and_take_one() {
    EXPECT_TRUE(publish_async("orders", "x").get()[0]);
    auto delivered = std::make_shared<std::promise<delivery_tag>>();
    auto subscribed = call<result<consumer_id>>([&](auto done) {
      host_->subscribe(
          "orders", 1,
          [delivered, once = std::make_shared<std::once_flag>()](std::vector<delivery>&& batch) {
            std::call_once(*once, [&] { delivered->set_value(batch.at(0).tag); });
          },
          std::move(done));
    });
    EXPECT_TRUE(subscribed);
    return delivered->get_future().get();
  }
};

TEST_F(group_commit, the_next_sync_starts_when_one_returns_without_the_engine_thread) {
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  int first = 0;
  auto [a, b] = two_publishes_one_sync_held(first);
  // With the engine thread busy, the first sync returns and the second (for
  // "b", appended while the first ran) starts anyway.
  auto release = hold_engine();
  gate_.let_through(1);
  const bool second_started = gate_.wait_for_arrivals(first + 1, 10s);
  // Nothing is confirmed while the engine thread is held (it sends confirms).
  EXPECT_EQ(a.wait_for(0s), std::future_status::timeout);
  release->set_value();
  EXPECT_TRUE(second_started) << "the second sync waited for the engine thread";
  ASSERT_TRUE(a.get()[0]);
  EXPECT_EQ(b.wait_for(100ms), std::future_status::timeout) << "\"b\" confirmed before its sync";
  gate_.open_gate();
  auto rb = b.get();
  ASSERT_TRUE(rb[0]) << rb[0].error().message;
  EXPECT_LT(rb[0]->position, host_->durable_end());
}

TEST_F(group_commit, a_big_batch_appended_during_a_sync_waits_for_the_engine_thread) {
  open(/*immediate_sync_bytes=*/1);  // every batch counts as big
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  int first = 0;
  auto [a, b] = two_publishes_one_sync_held(first);
  auto release = hold_engine();
  gate_.let_through(1);
  // The sync thread hands "b" to the engine thread, which is held.
  const bool started_early = gate_.wait_for_arrivals(first + 1, 300ms);
  release->set_value();
  EXPECT_FALSE(started_early) << "a big batch's sync started without the engine thread";
  ASSERT_TRUE(a.get()[0]);
  ASSERT_TRUE(gate_.wait_for_arrivals(first + 1));  // the engine starts it
  gate_.open_gate();
  auto rb = b.get();
  ASSERT_TRUE(rb[0]) << rb[0].error().message;
}

TEST_F(group_commit, records_nobody_waits_for_are_synced_when_the_engine_asks) {
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  const auto tag = publish_and_take_one();
  ASSERT_FALSE(HasFailure());
  gate_.close_gate();
  const int first = gate_.arrivals() + 1;
  auto a = publish_async("orders", "a");
  ASSERT_TRUE(gate_.wait_for_arrivals(first));
  // An ack is appended while "a" syncs; nobody waits for it to be durable.
  auto acked = call<std::vector<status>>([&](auto done) { host_->ack({tag}, std::move(done)); });
  ASSERT_TRUE(acked.at(0));
  auto release = hold_engine();
  gate_.let_through(1);
  const bool started_early = gate_.wait_for_arrivals(first + 1, 300ms);
  release->set_value();
  EXPECT_FALSE(started_early) << "a sync of an ack alone started without the engine thread";
  ASSERT_TRUE(a.get()[0]);
  ASSERT_TRUE(gate_.wait_for_arrivals(first + 1));  // the engine syncs the ack
  gate_.open_gate();
  barrier();
}

// An ack needs no confirm and losing it in a crash only means a redelivery: it
// starts no fdatasync of its own but rides the next publish's.
TEST_F(group_commit, an_ack_starts_no_sync_of_its_own_and_rides_the_next_publish) {
  unawaited_sync_delay_ = std::chrono::hours(1);
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  const auto tag = publish_and_take_one();
  barrier();
  const int before = gate_.arrivals();
  auto acked = call<std::vector<status>>([&](auto done) { host_->ack({tag}, std::move(done)); });
  ASSERT_TRUE(acked.at(0));
  EXPECT_FALSE(gate_.wait_for_arrivals(before + 1, 300ms)) << "an ack started a sync of its own";
  ASSERT_TRUE(publish_async("orders", "y").get()[0]);
  barrier();
  EXPECT_EQ(gate_.arrivals(), before + 1) << "one sync for the ack and the publish";
  // Both are durable: after a power loss "x" stays acked and "y" is there.
  crash();
  open();
  EXPECT_EQ(listed_bodies("orders"), std::multiset<std::string>{"y"});
}

// Without a publish to ride, acks are synced after host_options::unawaited_sync_delay.
TEST_F(group_commit, acks_alone_are_synced_after_a_short_delay) {
  unawaited_sync_delay_ = std::chrono::milliseconds(1);
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  const auto tag = publish_and_take_one();
  barrier();
  const int before = gate_.arrivals();
  const auto durable_before = host_->durable_end();
  auto acked = call<std::vector<status>>([&](auto done) { host_->ack({tag}, std::move(done)); });
  ASSERT_TRUE(acked.at(0));
  ASSERT_TRUE(gate_.wait_for_arrivals(before + 1)) << "the ack was never synced";
  // Its result reached the engine thread, so the sync is done.
  for (int i = 0; i < 10000 && host_->durable_end() == durable_before; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GT(host_->durable_end(), durable_before);
  crash();
  open();
  EXPECT_TRUE(listed_bodies("orders").empty()) << "the ack was lost";
}

TEST_F(group_commit, a_failed_sync_fails_what_was_appended_during_it_and_syncs_no_more) {
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  int first = 0;
  auto [a, b] = two_publishes_one_sync_held(first);
  gate_.open_gate(/*fail=*/true);
  for (auto* f : {&a, &b}) {
    auto r = f->get();
    ASSERT_FALSE(r[0]) << "confirmed after a failed sync";
    EXPECT_EQ(r[0].error().code, errc::io_error);
  }
  auto later = publish_async("orders", "later").get();
  ASSERT_FALSE(later[0]);
  EXPECT_EQ(later[0].error().code, errc::io_error);
  barrier();
  EXPECT_EQ(gate_.arrivals(), first) << "synced again after a failed sync";
  crash();
  open();
  EXPECT_TRUE(listed_bodies("orders").empty());
}

TEST_F(group_commit, the_second_sync_failing_fails_only_what_it_covers) {
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  int first = 0;
  auto [a, b] = two_publishes_one_sync_held(first);
  gate_.let_through(1);
  auto ra = a.get();
  ASSERT_TRUE(ra[0]) << ra[0].error().message;
  ASSERT_TRUE(gate_.wait_for_arrivals(first + 1));  // the sync covering "b" is held
  EXPECT_EQ(b.wait_for(0s), std::future_status::timeout);
  gate_.open_gate(/*fail=*/true);
  auto rb = b.get();
  ASSERT_FALSE(rb[0]) << "confirmed after a failed sync";
  EXPECT_EQ(rb[0].error().code, errc::io_error);
  crash();
  open();
  EXPECT_EQ(listed_bodies("orders"), (std::multiset<std::string>{"a"}));
}

TEST_F(group_commit, a_stop_while_a_second_sync_is_pending_confirms_everything_appended) {
  open();
  ASSERT_TRUE(
      call<status>([&](auto done) { host_->declare_queue("orders", {}, std::move(done)); }));
  int first = 0;
  auto [a, b] = two_publishes_one_sync_held(first);
  std::thread stopper([this] { host_->stop(); });
  gate_.open_gate();
  stopper.join();
  for (auto* f : {&a, &b}) {
    auto r = f->get();
    ASSERT_TRUE(r[0]) << r[0].error().message;
  }
  crash();  // nothing unsynced is left to lose
  open();
  EXPECT_EQ(listed_bodies("orders"), (std::multiset<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace outrider::broker
