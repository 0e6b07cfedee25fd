// The host with real threads on a real directory: group commit, durable-gated
// delivery, restart, delayed delivery and cancel.
#include "broker/host.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <set>
#include <thread>

namespace outrider::broker {
namespace {

using namespace std::chrono_literals;

class host_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/outrider-host-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    open();
  }
  void TearDown() override {
    host_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    host_options o;
    o.data_dir = dir_;
    o.engine_context = engine_context_;
    if (segment_bytes_ != 0) o.log.segment_bytes = segment_bytes_;
    auto h = host::open(io::posix_file_system(), o, &registry_);
    ASSERT_TRUE(h) << h.error().message;
    host_ = std::move(*h);
    host_->start();
  }
  void restart() {
    host_.reset();
    registry_.~registry();
    new (&registry_) metrics::registry();
    open();
  }

  status declare(const std::string& q) {
    std::promise<status> p;
    host_->declare_queue(q, {}, [&](status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }

  std::vector<result<publish_receipt>> publish(const std::string& q,
                                               std::vector<std::string> bodies,
                                               std::optional<wall_time> deliver_at = std::nullopt) {
    std::vector<publish_request> batch;
    for (auto& b : bodies) {
      publish_request r;
      r.destination = q;
      r.body = std::move(b);
      r.deliver_at = deliver_at;
      batch.push_back(std::move(r));
    }
    std::promise<std::vector<result<publish_receipt>>> p;
    host_->publish(std::move(batch), [&](auto results) { p.set_value(std::move(results)); });
    return p.get_future().get();
  }

  // Collects deliveries (acking each) until `count` arrived or the timeout.
  struct collector {
    std::mutex m;
    std::condition_variable cv;
    std::vector<delivery> got;
    std::vector<wall_time> received_at;
    consumer_id consumer = 0;  // set before any delivery can arrive (engine thread ordering)
  };
  consumer_id subscribe(const std::string& q, collector& c, std::uint32_t credit = 100,
                        bool auto_ack = true) {
    std::promise<result<consumer_id>> p;
    // The sink runs on the host's engine thread, possibly while host_ is being
    // reset (unique_ptr::reset nulls the pointer before destroying): use the host itself.
    host* h = host_.get();
    host_->subscribe(
        q, credit,
        [h, &c, auto_ack](std::vector<delivery>&& batch) {
          std::vector<delivery_tag> tags;
          {
            std::lock_guard lock(c.m);
            for (auto& d : batch) {
              tags.push_back(d.tag);
              c.received_at.push_back(std::chrono::system_clock::now());
              c.got.push_back(std::move(d));
            }
          }
          c.cv.notify_all();
          if (auto_ack) {
            auto n = static_cast<std::uint32_t>(tags.size());
            h->ack(std::move(tags), nullptr);
            h->add_credit(c.consumer, n);  // top up as the client library does
          }
        },
        [&](result<consumer_id> r) {
          if (r) c.consumer = *r;  // on the engine thread, before any delivery
          p.set_value(std::move(r));
        });
    auto r = p.get_future().get();
    EXPECT_TRUE(r);
    return r.value_or(0);
  }
  bool wait_for(collector& c, std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(c.m);
    return c.cv.wait_for(lock, timeout, [&] { return c.got.size() >= count; });
  }

  // Collectors outlive the host (declared before it): its engine thread may
  // still hand deliveries to their sinks while the host stops.
  collector& new_collector() { return collectors_.emplace_back(); }
  std::deque<collector> collectors_;
  boost::asio::io_context* engine_context_ = nullptr;  // open(): the host's own thread
  std::uint64_t segment_bytes_ = 0;                    // open(): the log's default if 0
  std::string dir_;
  metrics::registry registry_;
  std::unique_ptr<host> host_;
};

TEST_F(host_test, publish_is_confirmed_then_delivered_and_acked) {
  ASSERT_TRUE(declare("orders"));
  auto results = publish("orders", {"a", "b", "c"});
  ASSERT_EQ(results.size(), 3U);
  for (auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_LT(r->position, host_->durable_end()) << "confirmed before durable";
  }
  collector& c = new_collector();
  subscribe("orders", c);
  ASSERT_TRUE(wait_for(c, 3));
  EXPECT_EQ(c.got[0].msg.body, "a");
  EXPECT_EQ(c.got[2].msg.body, "c");
  EXPECT_NE(registry_.expose().find("outrider_broker_published_total 3"), std::string::npos);
}

TEST_F(host_test, unknown_queue_fails_per_message) {
  auto results = publish("nope", {"x"});
  ASSERT_EQ(results.size(), 1U);
  ASSERT_FALSE(results[0]);
  EXPECT_EQ(results[0].error().code, errc::queue_not_found);
}

TEST_F(host_test, confirmed_messages_survive_restart) {
  ASSERT_TRUE(declare("orders"));
  std::vector<std::string> bodies;
  for (int i = 0; i < 200; ++i) bodies.push_back("m" + std::to_string(i));
  for (auto& r : publish("orders", bodies)) ASSERT_TRUE(r);
  restart();
  collector& c = new_collector();
  subscribe("orders", c);
  ASSERT_TRUE(wait_for(c, 200));
  std::set<std::string> seen;
  for (auto& d : c.got) seen.insert(d.msg.body);
  EXPECT_EQ(seen.size(), 200U);
}

// The host has the log's next segment written ahead (header and zeros) on its
// checkpoint thread and the log rolls into it: the active segment's file is then
// segment_bytes long, its records at the front; every message survives a restart.
TEST_F(host_test, segments_written_ahead_keep_every_message_across_rolls_and_restarts) {
  segment_bytes_ = 64 * 1024;
  restart();
  ASSERT_TRUE(declare("orders"));
  const auto written_ahead = [&] {
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/log")) {
      const auto name = e.path().filename().string();
      if (name.ends_with(".log") && name != "00000000000000000001.log" &&
          e.file_size() == segment_bytes_) {
        return true;
      }
    }
    return false;
  };
  int published = 0;
  for (int batch = 0; batch < 2000 && !(published >= 300 && written_ahead()); ++batch) {
    std::vector<std::string> bodies;
    for (int i = 0; i < 10; ++i) bodies.push_back(std::string(1000, 'a' + (published + i) % 26));
    for (auto& r : publish("orders", bodies)) ASSERT_TRUE(r) << r.error().message;
    published += 10;
  }
  ASSERT_TRUE(written_ahead()) << "no segment was written ahead and rolled into";
  restart();
  collector& c = new_collector();
  subscribe("orders", c, 500);
  ASSERT_TRUE(wait_for(c, static_cast<std::size_t>(published)));
  EXPECT_EQ(c.got.size(), static_cast<std::size_t>(published));
  for (std::size_t i = 0; i < c.got.size(); ++i) {
    ASSERT_EQ(c.got[i].msg.body, std::string(1000, static_cast<char>('a' + i % 26))) << i;
  }
}

// Competing consumers of one queue: one dispatch round serves both, and each
// sink gets only its own deliveries (a single consumer's round is handed over
// as one batch without grouping).
TEST_F(host_test, competing_consumers_each_get_only_their_own_deliveries) {
  ASSERT_TRUE(declare("q"));
  collector& a = new_collector();
  collector& b = new_collector();
  subscribe("q", a, 5);
  subscribe("q", b, 5);
  std::vector<std::string> bodies;
  for (int i = 0; i < 40; ++i) bodies.push_back("m" + std::to_string(i));
  for (auto& r : publish("q", bodies)) ASSERT_TRUE(r);
  ASSERT_TRUE(wait_for(a, 1));
  ASSERT_TRUE(wait_for(b, 1));
  std::set<std::string> seen;
  for (collector* c : {&a, &b}) {
    std::lock_guard lock(c->m);
    for (const auto& d : c->got) {
      EXPECT_EQ(d.consumer, c->consumer);
      seen.insert(d.msg.body);
    }
  }
  // Both keep acking and topping up their credit: every message arrives once.
  for (int i = 0; i < 1000 && seen.size() < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    seen.clear();
    for (collector* c : {&a, &b}) {
      std::lock_guard lock(c->m);
      for (const auto& d : c->got) seen.insert(d.msg.body);
    }
  }
  EXPECT_EQ(seen.size(), 40U);
  std::lock_guard la(a.m);
  std::lock_guard lb(b.m);
  EXPECT_EQ(a.got.size() + b.got.size(), 40U);
}

TEST_F(host_test, concurrent_publishers_all_delivered_once) {
  ASSERT_TRUE(declare("q"));
  collector& c = new_collector();
  subscribe("q", c, 500);
  constexpr int per_thread = 2000;
  std::vector<std::thread> threads;
  std::atomic<int> confirmed{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      for (int i = 0; i < per_thread; i += 50) {
        std::vector<publish_request> batch;
        for (int j = i; j < i + 50; ++j) {
          publish_request r;
          r.destination = "q";
          r.body = std::to_string(t) + ":" + std::to_string(j);
          batch.push_back(std::move(r));
        }
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        host_->publish(std::move(batch), [&, p](auto results) {
          for (auto& r : results) {
            if (r) ++confirmed;
          }
          p->set_value();
        });
      }
      for (auto& w : waits) w.wait();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(confirmed.load(), 2 * per_thread);
  ASSERT_TRUE(wait_for(c, 2 * per_thread));
  std::set<std::string> seen;
  for (auto& d : c.got) seen.insert(d.msg.body);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * per_thread));
}

TEST_F(host_test, delayed_message_never_early_and_cancel_works) {
  ASSERT_TRUE(declare("later"));
  const auto due = std::chrono::system_clock::now() + 300ms;
  auto kept = publish("later", {"kept"}, due);
  auto dropped = publish("later", {"dropped"}, due);
  ASSERT_TRUE(kept[0]);
  ASSERT_TRUE(dropped[0]);
  EXPECT_TRUE(kept[0]->scheduled);
  std::promise<status> cancelled;
  host_->cancel(dropped[0]->id, [&](status s) { cancelled.set_value(std::move(s)); });
  ASSERT_TRUE(cancelled.get_future().get());
  collector& c = new_collector();
  subscribe("later", c);
  ASSERT_TRUE(wait_for(c, 1, 5s));
  EXPECT_GE(c.received_at[0], due) << "delivered early";
  EXPECT_EQ(c.got[0].msg.body, "kept");
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(c.m);
  EXPECT_EQ(c.got.size(), 1U) << "the cancelled message was delivered";
}

TEST_F(host_test, scheduled_message_survives_restart_and_fires_when_past_due) {
  ASSERT_TRUE(declare("later"));
  const auto due = std::chrono::system_clock::now() + 200ms;
  ASSERT_TRUE(publish("later", {"x"}, due)[0]);
  host_.reset();
  std::this_thread::sleep_for(300ms);  // due while the broker is down
  restart();
  collector& c = new_collector();
  subscribe("later", c);
  ASSERT_TRUE(wait_for(c, 1, 5s));
  EXPECT_EQ(c.got[0].msg.body, "x");
}

TEST_F(host_test, nack_redelivers_after_delay_with_attempt_count) {
  ASSERT_TRUE(declare("q"));
  ASSERT_TRUE(publish("q", {"poison"})[0]);
  collector& c = new_collector();
  subscribe("q", c, 10, /*auto_ack=*/false);
  ASSERT_TRUE(wait_for(c, 1));
  const auto nacked_at = std::chrono::system_clock::now();
  std::promise<status> p;
  host_->nack(c.got[0].tag, 150ms, false, [&](status s) { p.set_value(std::move(s)); });
  ASSERT_TRUE(p.get_future().get());
  ASSERT_TRUE(wait_for(c, 2));
  EXPECT_EQ(c.got[1].attempt, 2U);
  EXPECT_GE(c.received_at[1] - nacked_at, 150ms);
}

// The wake-up timer stays armed for the first lease after it is acked (it fires
// for nothing then): the second lease still expires and is redelivered.
TEST_F(host_test, a_lease_still_expires_after_the_earlier_one_was_acked) {
  queue_options o;
  o.lease = 300ms;
  o.max_attempts = 0;
  std::promise<status> declared;
  host_->declare_queue("q", o, [&](status s) { declared.set_value(std::move(s)); });
  ASSERT_TRUE(declared.get_future().get());
  collector& c = new_collector();
  subscribe("q", c, 10, /*auto_ack=*/false);
  ASSERT_TRUE(publish("q", {"first"})[0]);
  ASSERT_TRUE(wait_for(c, 1));
  ASSERT_TRUE(publish("q", {"second"})[0]);
  ASSERT_TRUE(wait_for(c, 2));
  std::promise<std::vector<status>> acked;
  host_->ack({c.got[0].tag}, [&](std::vector<status> s) { acked.set_value(std::move(s)); });
  ASSERT_TRUE(acked.get_future().get()[0]);
  ASSERT_TRUE(wait_for(c, 3));
  std::lock_guard lock(c.m);
  EXPECT_EQ(c.got[2].msg.body, "second");
  EXPECT_EQ(c.got[2].attempt, 2U);
  for (std::size_t i = 1; i < c.got.size(); ++i) EXPECT_EQ(c.got[i].msg.body, "second");
}

TEST_F(host_test, stop_with_work_in_flight_loses_nothing_confirmed) {
  ASSERT_TRUE(declare("q"));
  std::atomic<int> confirmed{0};
  std::atomic<int> callbacks{0};
  for (int i = 0; i < 100; ++i) {
    std::vector<publish_request> batch(1);
    batch[0].destination = "q";
    batch[0].body = std::to_string(i);
    host_->publish(std::move(batch), [&](auto results) {
      if (results[0]) ++confirmed;
      ++callbacks;
    });
  }
  host_->stop();
  EXPECT_EQ(callbacks.load(), 100) << "every publish completes, confirmed or failed";
  const int was_confirmed = confirmed.load();
  restart();
  collector& c = new_collector();
  subscribe("q", c);
  wait_for(c, static_cast<std::size_t>(was_confirmed), 5s);
  std::lock_guard lock(c.m);
  EXPECT_GE(c.got.size(), static_cast<std::size_t>(was_confirmed));
}

}  // namespace
}  // namespace outrider::broker

namespace outrider::broker {
namespace {

// `outrider broker` runs the engine on its connection thread: the host then
// starts no engine thread, completes everything on that context, and stops
// without stopping the context.
TEST_F(host_test, an_engine_on_a_given_context_runs_on_its_thread_and_leaves_it_running) {
  boost::asio::io_context ctx{1};
  auto guard = boost::asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  engine_context_ = &ctx;
  restart();
  ASSERT_TRUE(declare("orders"));
  std::vector<std::string> bodies;
  for (int i = 0; i < 50; ++i) bodies.push_back("m" + std::to_string(i));
  for (auto& r : publish("orders", bodies)) ASSERT_TRUE(r) << r.error().message;
  std::promise<std::thread::id> engine_thread;
  host_->stats([&](auto) { engine_thread.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(engine_thread.get_future().get(), runner.get_id());
  restart();  // stop() leaves the context running for the next host
  collector& c = new_collector();
  subscribe("orders", c);
  EXPECT_TRUE(wait_for(c, 50));
  host_.reset();
  std::promise<void> still_running;
  boost::asio::post(ctx, [&] { still_running.set_value(); });
  still_running.get_future().get();
  guard.reset();
  runner.join();
}

}  // namespace
}  // namespace outrider::broker
