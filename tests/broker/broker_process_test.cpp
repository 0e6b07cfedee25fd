// The real `outrider broker` process: configuration errors, durability across
// restarts, and a crash test that kills it with SIGKILL under load.
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "broker_client/client.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
namespace bc = broker_client;
using testing::outrider_binary;
using testing::process;

// A broker client on its own io thread.
class connection {
 public:
  explicit connection(std::uint16_t port)
      : guard_(ctx_.get_executor()), thread_([this] { ctx_.run(); }) {
    bc::client_options o;
    o.address = "127.0.0.1:" + std::to_string(port);
    o.connect_timeout = 2s;
    client_ = bc::client::create(ctx_, o);
    std::promise<status> p;
    client_->connect([&](status s) { p.set_value(std::move(s)); });
    connected_ = p.get_future().get();
  }
  ~connection() {
    client_->close();
    guard_.reset();
    thread_.join();
  }
  bool ok() const { return static_cast<bool>(connected_); }
  bc::client& operator*() { return *client_; }
  bc::client* operator->() { return client_.get(); }

  template <class T, class Call>
  T call(Call c) {
    std::promise<T> p;
    c(*client_, [&p](T v) { p.set_value(std::move(v)); });
    return p.get_future().get();
  }

 private:
  boost::asio::io_context ctx_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::shared_ptr<bc::client> client_;
  status connected_;
};

class broker_process : public ::testing::Test {
 protected:
  std::unique_ptr<process> start_broker(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{
        outrider_binary(), "broker",     "--listen",         "127.0.0.1:" + std::to_string(port_),
        "--data-dir",      data_.path(), "--metrics-listen", ""};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<process>(argv);
    EXPECT_TRUE(p->wait_for_output("outrider broker listening on", 20s)) << p->output();
    return p;
  }

  testing::temp_dir data_;
  std::uint16_t port_ = testing::free_port();
};

TEST_F(broker_process, unknown_config_key_names_file_line_and_key) {
  testing::temp_dir dir;
  const auto path = dir.file("broker.yaml");
  std::ofstream(path) << "broker:\n  lisen: 127.0.0.1:1\n";
  process p({outrider_binary(), "broker", "--config", path});
  EXPECT_EQ(p.wait(10s), 2);
  EXPECT_NE(p.output().find(
                path + ":2:3: key 'broker.lisen': unknown key (did you mean 'broker.listen'?)"),
            std::string::npos)
      << p.output();
}

TEST_F(broker_process, bad_flag_value_is_a_clear_error) {
  process p({outrider_binary(), "broker", "--max-body", "lots", "--data-dir", data_.path()});
  EXPECT_EQ(p.wait(10s), 2);
  EXPECT_NE(p.output().find("--max-body: expected a size"), std::string::npos) << p.output();
}

// The first broker runs its engine on a thread of its own (--engine-thread),
// the second on its connection thread (the default).
TEST_F(broker_process, confirmed_messages_survive_a_restart) {
  {
    auto broker = start_broker({"--engine-thread", "true"});
    connection c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(
        c.call<status>([](bc::client& cl, auto done) { cl.declare_queue("orders", {}, done); }));
    std::vector<bc::outgoing_message> batch;
    for (int i = 0; i < 50; ++i)
      batch.push_back(bc::outgoing_message{
          "orders", {}, {{"n", std::to_string(i)}}, "order " + std::to_string(i), {}});
    auto r = c.call<result<std::vector<bc::publish_result>>>(
        [&](bc::client& cl, auto done) { cl.publish(std::move(batch), done); });
    ASSERT_TRUE(r);
    for (auto& m : *r) ASSERT_TRUE(m.outcome) << m.outcome.error().message;
    EXPECT_EQ(broker->stop(10s), 0);
  }
  auto broker = start_broker();
  connection c(port_);
  ASSERT_TRUE(c.ok());
  auto queues = c.call<result<std::vector<bc::queue_info>>>(
      [](bc::client& cl, auto done) { cl.list_queues(done); });
  ASSERT_TRUE(queues);
  bool found = false;
  for (auto& q : *queues) {
    if (q.name == "orders") {
      found = true;
      EXPECT_EQ(q.ready, 50U);
    }
  }
  EXPECT_TRUE(found);
  process admin({outrider_binary(), "queues", "--broker", "127.0.0.1:" + std::to_string(port_)});
  EXPECT_EQ(admin.wait(10s), 0);
  EXPECT_NE(admin.output().find("orders"), std::string::npos) << admin.output();
}

// Kills the broker with SIGKILL at random points while a producer publishes
// (some messages delayed) and a consumer consumes; restarts it each time. At
// the end every confirmed message has been delivered at least once and no
// delayed message arrived before its time.
TEST_F(broker_process, sigkill_under_load_loses_no_confirmed_message) {
  constexpr int rounds = 4;
  std::mt19937 rng(12345);
  std::set<std::string> confirmed;
  std::map<std::string, wall_time> due;  // delayed ones
  std::set<std::string> delivered;
  int early = 0;
  int duplicates = 0;
  std::mutex m;
  int seq = 0;

  auto consume = [&](connection& c) {
    bc::subscribe_request req{"load", 200, {}};
    auto r = c.call<result<bc::subscription_id>>([&](bc::client& cl, auto done) {
      cl.subscribe(
          req,
          [&, cl_ptr = &cl](bc::delivery d) {
            const auto now = std::chrono::system_clock::now();
            {
              std::lock_guard lock(m);
              if (!delivered.insert(d.body).second) ++duplicates;
              if (d.deliver_at != wall_time{} && d.deliver_at > d.published_at &&
                  now < d.deliver_at)
                ++early;
            }
            cl_ptr->ack({d.tag}, nullptr);
          },
          done);
    });
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
  };

  for (int round = 0; round <= rounds; ++round) {
    auto broker = start_broker();
    connection c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(
        c.call<status>([](bc::client& cl, auto done) { cl.declare_queue("load", {}, done); }));
    consume(c);
    if (round == rounds) {
      // Final round: no load, wait until everything confirmed (and due) arrived.
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (std::chrono::steady_clock::now() < deadline) {
        {
          std::lock_guard lock(m);
          bool all = true;
          for (const auto& id : confirmed) {
            if (!delivered.count(id)) {
              all = false;
              break;
            }
          }
          if (all) break;
        }
        std::this_thread::sleep_for(50ms);
      }
      break;
    }
    std::atomic<bool> stop{false};
    std::thread producer([&] {
      while (!stop) {
        std::vector<bc::outgoing_message> batch;
        std::vector<std::pair<std::string, std::optional<wall_time>>> bodies;
        const auto now = std::chrono::system_clock::now();
        for (int i = 0; i < 20; ++i) {
          std::string body = "m" + std::to_string(seq++) + std::string(1000, 'x');
          std::optional<wall_time> at;
          if (seq % 5 == 0) at = now + std::chrono::milliseconds(200 + seq % 1500);
          batch.push_back(bc::outgoing_message{"load", {}, {}, body, at.value_or(wall_time{})});
          bodies.emplace_back(body, at);
        }
        std::promise<result<std::vector<bc::publish_result>>> p;
        c->publish(std::move(batch), [&](auto r) { p.set_value(std::move(r)); });
        auto r = p.get_future().get();
        if (!r) break;  // connection gone: the broker was killed
        std::lock_guard lock(m);
        for (std::size_t i = 0; i < r->size(); ++i) {
          if ((*r)[i].outcome) {
            confirmed.insert(bodies[i].first);
            if (bodies[i].second) due[bodies[i].first] = *bodies[i].second;
          }
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    broker->kill_now();
    stop = true;
    producer.join();
  }

  std::lock_guard lock(m);
  EXPECT_GT(confirmed.size(), 100U) << "the load did not get going";
  std::size_t missing = 0;
  for (const auto& id : confirmed) missing += delivered.count(id) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0U) << "confirmed messages lost after SIGKILL";
  EXPECT_EQ(early, 0) << "delayed messages delivered early";
  RecordProperty("confirmed", static_cast<int>(confirmed.size()));
  RecordProperty("duplicates", duplicates);
  std::printf("crash test: %zu confirmed, %zu delivered, %d duplicates, %zu delayed\n",
              confirmed.size(), delivered.size(), duplicates, due.size());
}

}  // namespace
}  // namespace outrider
