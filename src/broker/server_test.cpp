// The protocol server and the client together over real loopback TCP and Unix
// sockets, against fake_service.
#include "broker/server.h"

#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <future>
#include <gtest/gtest.h>
#include <set>
#include <thread>

#include "broker/fake_service_test_util.h"
#include "broker_client/address.h"
#include "broker_client/client.h"
#include "io/runtime.h"

namespace outrider::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using bc::client;

constexpr auto wait_limit = 10s;

template <class T>
T wait(std::future<T>& f) {
  if (f.wait_for(wait_limit) != std::future_status::ready) {
    ADD_FAILURE() << "timed out";
    std::abort();
  }
  return f.get();
}

// Polls `pred` until true or the wait limit.
template <class Pred>
bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + wait_limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// A client on its own io_context thread, with blocking helpers.
struct client_thread {
  explicit client_thread(bc::client_options opts) {
    c = client::create(ctx, std::move(opts));
    thread = std::thread([this] { ctx.run(); });
  }
  ~client_thread() {
    c->close();
    c.reset();
    work.reset();
    thread.join();
  }
  status connect() {
    std::promise<status> p;
    auto f = p.get_future();
    c->connect([&p](status s) { p.set_value(std::move(s)); });
    return wait(f);
  }
  status declare_queue(const std::string& name) {
    std::promise<status> p;
    auto f = p.get_future();
    c->declare_queue(name, {}, [&p](status s) { p.set_value(std::move(s)); });
    return wait(f);
  }
  result<std::vector<bc::publish_result>> publish(std::vector<bc::outgoing_message> batch) {
    std::promise<result<std::vector<bc::publish_result>>> p;
    auto f = p.get_future();
    c->publish(std::move(batch), [&p](auto r) { p.set_value(std::move(r)); });
    return wait(f);
  }
  template <class T, class Call>
  T call(Call call_fn) {
    std::promise<T> p;
    auto f = p.get_future();
    call_fn([&p](T r) { p.set_value(std::move(r)); });
    return wait(f);
  }

  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> work{ctx.get_executor()};
  std::shared_ptr<client> c;
  std::thread thread;
};

bc::outgoing_message msg(std::string queue, std::string body) {
  bc::outgoing_message m;
  m.destination = std::move(queue);
  m.body = std::move(body);
  m.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  return m;
}

class broker_server_test : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path = fmt::format("/tmp/outrider-proto-test-{}-{}.sock", ::getpid(), counter++);
    server_options opts;
    opts.listen = {"127.0.0.1:0", "unix:" + socket_path};
    opts.max_in_flight_publishes = 1000;
    srv = std::make_unique<server>(rt, opts, fake);
    ASSERT_TRUE(srv->start().ok());
    rt.start();
  }
  void TearDown() override { srv->stop(1s); }

  bc::client_options options(bool unix_socket = false) {
    bc::client_options o;
    o.address = unix_socket ? srv->addresses()[1] : srv->addresses()[0];
    o.client_name = "test";
    return o;
  }

  static inline int counter = 0;
  std::string socket_path;
  io::runtime rt{2};
  fake_service fake;
  std::unique_ptr<server> srv;
};

TEST_F(broker_server_test, pipelined_publishes_are_confirmed_in_order_over_tcp) {
  auto o = options();
  o.max_in_flight_batches = 8;
  client_thread ct(o);
  ASSERT_TRUE(ct.connect().ok());
  EXPECT_EQ(ct.c->server_info().server_name, "outrider-broker");
  ASSERT_TRUE(ct.declare_queue("orders").ok());
  fake.hold_publishes(true);

  constexpr int batches = 50;
  constexpr int per_batch = 10;
  std::mutex m;
  std::vector<int> order;
  std::vector<id128> ids;
  std::atomic<int> done{0};
  for (int b = 0; b < batches; ++b) {
    std::vector<bc::outgoing_message> batch;
    for (int i = 0; i < per_batch; ++i) batch.push_back(msg("orders", fmt::format("{}-{}", b, i)));
    ct.c->publish(std::move(batch), [&, b](result<std::vector<bc::publish_result>> r) {
      std::lock_guard lock(m);
      EXPECT_TRUE(r.ok());
      if (r) {
        EXPECT_EQ(r->size(), static_cast<std::size_t>(per_batch));
        for (const auto& pr : *r) {
          EXPECT_TRUE(pr.outcome.ok());
          ids.push_back(pr.id);
        }
      }
      order.push_back(b);
      ++done;
    });
  }
  // Only max_in_flight_batches reach the broker; the rest wait in the client.
  ASSERT_TRUE(eventually([&] { return fake.held_publishes() == 8; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(fake.held_publishes(), 8U);
  EXPECT_EQ(done.load(), 0);
  while (done.load() < batches) {
    fake.release_publishes();
    std::this_thread::sleep_for(1ms);
  }
  std::vector<int> expected(batches);
  for (int i = 0; i < batches; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, expected);
  std::set<id128> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(batches * per_batch));
  EXPECT_FALSE(unique.contains(id128{}));
}

TEST_F(broker_server_test, per_message_errors_and_client_side_limits) {
  auto o = options();
  o.max_queued_batches = 1;
  o.max_in_flight_batches = 1;
  client_thread ct(o);
  ASSERT_TRUE(ct.connect().ok());
  ASSERT_TRUE(ct.declare_queue("q").ok());
  auto given = msg("q", "x");
  given.id = id128{7, 7};
  auto r = ct.publish({msg("q", "ok"), msg("missing", "x"),
                       msg("q", std::string(fake_service::max_body + 1, 'b')), given});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4U);
  EXPECT_TRUE((*r)[0].outcome.ok());
  EXPECT_EQ((*r)[1].outcome.error().code, errc::queue_not_found);
  EXPECT_EQ((*r)[2].outcome.error().code, errc::message_too_large);
  EXPECT_EQ((*r)[3].id, (id128{7, 7}));

  auto empty = ct.publish({});
  EXPECT_EQ(empty.error().code, errc::invalid_argument);

  // One in flight, one queued, the third is refused.
  fake.hold_publishes(true);
  std::promise<void> first_done;
  ct.c->publish({msg("q", "1")}, [&](auto) { first_done.set_value(); });
  ct.c->publish({msg("q", "2")}, [](auto) {});
  auto third = ct.publish({msg("q", "3")});
  EXPECT_EQ(third.error().code, errc::resource_exhausted);
  ASSERT_TRUE(eventually([&] { return fake.release_publishes() > 0; }));
  auto f = first_done.get_future();
  wait(f);
  ASSERT_TRUE(eventually([&] { return fake.release_publishes() > 0; }));
}

TEST_F(broker_server_test, subscribe_never_exceeds_credit_over_a_unix_socket) {
  client_thread producer(options(true));
  ASSERT_TRUE(producer.connect().ok());
  ASSERT_TRUE(producer.declare_queue("work").ok());
  constexpr int total = 200;
  for (int b = 0; b < total / 20; ++b) {
    std::vector<bc::outgoing_message> batch;
    for (int i = 0; i < 20; ++i) batch.push_back(msg("work", std::to_string(b * 20 + i)));
    ASSERT_TRUE(producer.publish(std::move(batch)).ok());
  }

  // A consumer that never acks gets exactly its credit.
  client_thread idle(options(true));
  ASSERT_TRUE(idle.connect().ok());
  std::atomic<int> idle_got{0};
  auto idle_sub = idle.call<result<bc::subscription_id>>([&](auto done) {
    idle.c->subscribe(
        {"work", 3, {}}, [&](bc::delivery) { ++idle_got; }, done);
  });
  ASSERT_TRUE(idle_sub.ok());
  ASSERT_TRUE(eventually([&] { return idle_got.load() == 3; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(idle_got.load(), 3);
  idle.c->add_credit(*idle_sub, 2);
  ASSERT_TRUE(eventually([&] { return idle_got.load() == 5; }));
  // Unsubscribing returns its 5 unacked deliveries to the queue.
  EXPECT_TRUE(idle.call<status>([&](auto done) { idle.c->unsubscribe(*idle_sub, done); }).ok());

  // A consumer that acks: credit tops up automatically, never more than 5 unacked.
  client_thread worker(options(true));
  ASSERT_TRUE(worker.connect().ok());
  std::atomic<int> got{0};
  std::atomic<int> unacked{0};
  std::atomic<int> max_unacked{0};
  std::atomic<int> acks_done{0};
  std::set<std::string> bodies;
  auto sub = worker.call<result<bc::subscription_id>>([&](auto done) {
    worker.c->subscribe(
        {"work", 5, {}},
        [&](bc::delivery d) {
          const int now = ++unacked;
          int seen = max_unacked.load();
          while (now > seen && !max_unacked.compare_exchange_weak(seen, now)) {
          }
          bodies.insert(d.body);
          ++got;
          // Ack on the io thread, as a real consumer would after processing.
          worker.c->ack({d.tag}, [&](auto r) {
            EXPECT_TRUE(r.ok() && r->empty());
            ++acks_done;
          });
          --unacked;
        },
        done);
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(eventually([&] { return got.load() == total; }));
  // Every ack answered before the client closes (a close fails pending calls).
  ASSERT_TRUE(eventually([&] { return acks_done.load() == total; }));
  EXPECT_LE(max_unacked.load(), 5);
  EXPECT_LE(fake.max_outstanding(), 5U);
  EXPECT_EQ(bodies.size(), static_cast<std::size_t>(total));
}

// A consumer acking each delivery without a callback (as the benchmarks do):
// the acks of one DELIVER frame travel as one ACK frame, and the credit they
// give back still lets every later message through.
TEST_F(broker_server_test, acks_without_a_callback_are_merged_and_still_top_up_credit) {
  client_thread producer(options());
  ASSERT_TRUE(producer.connect().ok());
  ASSERT_TRUE(producer.declare_queue("jobs").ok());
  constexpr int per_batch = 20;
  auto publish_batch = [&](int b) {
    std::vector<bc::outgoing_message> batch;
    for (int i = 0; i < per_batch; ++i) batch.push_back(msg("jobs", std::to_string(b * 100 + i)));
    return producer.publish(std::move(batch)).ok();
  };
  ASSERT_TRUE(publish_batch(0));
  client_thread consumer(options());
  ASSERT_TRUE(consumer.connect().ok());
  std::atomic<int> got{0};
  bc::client* c = consumer.c.get();
  auto sub = consumer.call<result<bc::subscription_id>>([&](auto done) {
    c->subscribe(
        {"jobs", per_batch, {}},
        [&, c](bc::delivery d) {
          c->ack({d.tag}, nullptr);
          ++got;
        },
        done);
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(eventually([&] { return fake.acks().second == per_batch; }));
  EXPECT_LT(fake.acks().first, static_cast<std::size_t>(per_batch));
  for (int b = 1; b <= 3; ++b) ASSERT_TRUE(publish_batch(b));
  ASSERT_TRUE(eventually([&] { return fake.acks().second == 4 * per_batch; }));
  EXPECT_EQ(got.load(), 4 * per_batch);
  EXPECT_LE(fake.max_outstanding(), static_cast<std::size_t>(per_batch));
}

TEST_F(broker_server_test, nack_redelivers_or_dead_letters_and_admin_calls_work) {
  client_thread ct(options());
  ASSERT_TRUE(ct.connect().ok());
  ASSERT_TRUE(ct.declare_queue("jobs").ok());
  ASSERT_TRUE(ct.publish({msg("jobs", "a"), msg("jobs", "b")}).ok());

  std::mutex m;
  std::vector<bc::delivery> seen;
  auto sub = ct.call<result<bc::subscription_id>>([&](auto done) {
    ct.c->subscribe(
        {"jobs", 10, {}},
        [&](bc::delivery d) {
          std::lock_guard lock(m);
          seen.push_back(std::move(d));
        },
        done);
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() == 2;
  }));
  bc::delivery_tag a_tag = 0, b_tag = 0;
  {
    std::lock_guard lock(m);
    for (const auto& d : seen) (d.body == "a" ? a_tag : b_tag) = d.tag;
    EXPECT_EQ(seen[0].headers.size(), 1U);
  }
  auto nacked = ct.call<result<std::vector<bc::settle_failure>>>([&](auto done) {
    ct.c->nack({{a_tag, 10ms, false}, {b_tag, {}, true}, {999, {}, false}}, done);
  });
  ASSERT_TRUE(nacked.ok());
  ASSERT_EQ(nacked->size(), 1U);
  EXPECT_EQ((*nacked)[0].tag, 999U);
  EXPECT_EQ((*nacked)[0].err.code, errc::delivery_not_found);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() == 3;
  }));
  {
    std::lock_guard lock(m);
    EXPECT_EQ(seen[2].body, "a");
    EXPECT_EQ(seen[2].attempt, 2U);
  }

  auto queues =
      ct.call<result<std::vector<bc::queue_info>>>([&](auto done) { ct.c->list_queues(done); });
  ASSERT_TRUE(queues.ok());
  bool found = false;
  for (const auto& q : *queues) {
    if (q.name == "jobs") {
      found = true;
      EXPECT_EQ(q.in_flight, 1U);
      EXPECT_EQ(q.dead_letters, 1U);
    }
  }
  EXPECT_TRUE(found);
  auto peeked = ct.call<result<std::vector<bc::peeked_message>>>(
      [&](auto done) { ct.c->peek("jobs.dlq", 10, done); });
  ASSERT_TRUE(peeked.ok());
  ASSERT_EQ(peeked->size(), 1U);
  EXPECT_EQ((*peeked)[0].body, "b");
  auto replayed = ct.call<result<std::uint64_t>>(
      [&](auto done) { ct.c->replay_dead_letters("jobs.dlq", 0, done); });
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, 1U);
  auto stats = ct.call<result<bc::stat_list>>([&](auto done) { ct.c->stats(done); });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0], (std::pair<std::string, std::uint64_t>{"messages_published", 2}));

  // Request-level errors keep the connection usable.
  auto cancel = ct.call<status>([&](auto done) { ct.c->cancel_scheduled(id128{1, 2}, done); });
  EXPECT_EQ(cancel.error().code, errc::message_not_found);
  auto scheduled = msg("jobs", "later");
  scheduled.deliver_at = wall_time(std::chrono::hours(24 * 365 * 100));
  auto pub = ct.publish({scheduled});
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(ct.call<status>([&](auto done) { ct.c->cancel_scheduled((*pub)[0].id, done); }).ok());
  auto bad = ct.call<result<bc::subscription_id>>([&](auto done) {
    ct.c->subscribe(
        {"nope", 1, {}}, [](bc::delivery) {}, done);
  });
  EXPECT_EQ(bad.error().code, errc::queue_not_found);
  EXPECT_EQ(ct.call<status>([&](auto done) { ct.c->bind("no-topic", "jobs", done); }).error().code,
            errc::topic_not_found);
  EXPECT_TRUE(ct.call<status>([&](auto done) { ct.c->declare_topic("t", done); }).ok());
  EXPECT_TRUE(ct.call<status>([&](auto done) { ct.c->bind("t", "jobs", done); }).ok());
  EXPECT_TRUE(ct.call<status>([&](auto done) { ct.c->ping(done); }).ok());
}

// A raw TCP peer for sending hand-made bytes.
struct raw_peer {
  explicit raw_peer(const std::string& address) : socket(ctx) {
    auto a = bc::parse_address(address);
    asio::ip::tcp::endpoint ep(asio::ip::make_address(a->host), a->port);
    socket.connect(ep);
  }
  void send(std::string_view bytes) { asio::write(socket, asio::buffer(bytes)); }
  // Reads until EOF (the server closes) and returns the frames received.
  std::vector<bc::frame> read_until_closed() {
    boost::system::error_code ec;
    for (;;) {
      char chunk[4096];
      auto n = socket.read_some(asio::buffer(chunk), ec);
      received.append(chunk, n);
      if (ec) break;
    }
    std::vector<bc::frame> frames;
    std::string_view rest = received;
    while (!rest.empty()) {
      std::size_t used = 0;
      auto f = bc::parse_frame(rest, bc::wire::default_max_frame_bytes, used);
      if (!f || !*f) break;
      frames.push_back(**f);
      rest.remove_prefix(used);
    }
    return frames;
  }
  asio::io_context ctx;
  asio::ip::tcp::socket socket;
  std::string received;
};

error error_of(const bc::frame& f) {
  error e;
  EXPECT_TRUE(bc::decode_error(f.payload, e).ok());
  return e;
}

TEST_F(broker_server_test, garbage_gets_an_error_and_a_close_while_others_keep_working) {
  client_thread good(options());
  ASSERT_TRUE(good.connect().ok());
  ASSERT_TRUE(good.declare_queue("q").ok());

  {  // garbage instead of HELLO
    raw_peer peer(srv->addresses()[0]);
    peer.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    auto frames = peer.read_until_closed();
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(frames[0].op, bc::wire::opcode::error);
    EXPECT_EQ(frames[0].request_id, 0U);
    EXPECT_EQ(error_of(frames[0]).code, errc::protocol_error);
  }
  {  // a valid HELLO, then a frame with a bad checksum
    raw_peer peer(srv->addresses()[0]);
    std::string out;
    bc::encode_hello(out, 1, bc::hello{1, 1, "raw"});
    std::string bad;
    bc::encode_ping(bad, 2);
    bad.back() = static_cast<char>(bad.back() ^ 1);
    peer.send(out + bad);
    auto frames = peer.read_until_closed();
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_EQ(frames[0].op, bc::wire::opcode::hello_ok);
    EXPECT_EQ(frames[1].op, bc::wire::opcode::error);
    auto e = error_of(frames[1]);
    EXPECT_EQ(e.code, errc::protocol_error);
    EXPECT_NE(e.message.find("checksum"), std::string::npos);
  }
  {  // an oversized length
    raw_peer peer(srv->addresses()[0]);
    std::string out;
    bc::encode_hello(out, 1, bc::hello{1, 1, "raw"});
    const std::uint32_t huge = 0x7fffffff;
    out.append(reinterpret_cast<const char*>(&huge), sizeof huge);
    peer.send(out);
    auto frames = peer.read_until_closed();
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_NE(error_of(frames[1]).message.find("exceeds the limit"), std::string::npos);
  }
  {  // a server-to-client opcode from the client, and a malformed payload
    raw_peer peer(srv->addresses()[0]);
    std::string out;
    bc::encode_hello(out, 1, bc::hello{1, 1, "raw"});
    bc::encode_ok(out, 2, 0);
    peer.send(out);
    auto frames = peer.read_until_closed();
    ASSERT_EQ(frames.size(), 2U);
    EXPECT_NE(error_of(frames[1]).message.find("not a client-to-broker"), std::string::npos);
  }
  {  // no common protocol version
    raw_peer peer(srv->addresses()[0]);
    std::string out;
    bc::encode_hello(out, 5, bc::hello{2, 3, "future"});
    peer.send(out);
    auto frames = peer.read_until_closed();
    ASSERT_EQ(frames.size(), 1U);
    EXPECT_EQ(frames[0].request_id, 5U);
    EXPECT_EQ(error_of(frames[0]).code, errc::protocol_version_unsupported);
  }
  // The well-behaved client never noticed.
  auto r = good.publish({msg("q", "still fine")});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].outcome.ok());
}

TEST_F(broker_server_test, graceful_stop_delivers_in_flight_confirms_then_closes) {
  client_thread ct(options(true));
  ASSERT_TRUE(ct.connect().ok());
  ASSERT_TRUE(ct.declare_queue("q").ok());
  std::promise<error> lost;
  ct.c->on_disconnect([&](error e) { lost.set_value(std::move(e)); });
  fake.hold_publishes(true);
  std::atomic<int> confirmed{0};
  for (int i = 0; i < 3; ++i) {
    ct.c->publish({msg("q", std::to_string(i))}, [&](auto r) {
      EXPECT_TRUE(r.ok());
      ++confirmed;
    });
  }
  ASSERT_TRUE(eventually([&] { return fake.held_publishes() == 3; }));
  auto stopped = std::async(std::launch::async, [&] { srv->stop(5s); });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(stopped.wait_for(0s), std::future_status::timeout);  // waits for the confirms
  fake.release_publishes();
  stopped.wait();
  // The confirms went out before the close; the client thread may still be reading them.
  EXPECT_TRUE(eventually([&] { return confirmed.load() == 3; }));
  auto f = lost.get_future();
  EXPECT_EQ(wait(f).code, errc::unavailable);
  EXPECT_EQ(srv->active_connections(), 0U);
  EXPECT_EQ(fake.subscriptions(), 0U);
}

TEST_F(broker_server_test, connection_loss_fails_pending_calls_with_unavailable) {
  client_thread ct(options());
  ASSERT_TRUE(ct.connect().ok());
  ASSERT_TRUE(ct.declare_queue("q").ok());
  fake.hold_publishes(true);
  std::promise<result<std::vector<bc::publish_result>>> p;
  ct.c->publish({msg("q", "x")}, [&](auto r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(eventually([&] { return fake.held_publishes() == 1; }));
  srv->stop(0s);
  auto f = p.get_future();
  auto r = wait(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  fake.release_publishes();  // late completion for a closed connection: harmless
  auto after = ct.publish({msg("q", "y")});
  EXPECT_EQ(after.error().code, errc::unavailable);
}

TEST(broker_client_connect, refused_and_bad_addresses_are_reported) {
  {
    bc::client_options o;
    o.address = "unix:/tmp/outrider-proto-no-such.sock";
    client_thread ct(o);
    auto s = ct.connect();
    EXPECT_EQ(s.error().code, errc::unavailable);
  }
  {
    bc::client_options o;
    o.address = "no-port";
    client_thread ct(o);
    EXPECT_EQ(ct.connect().error().code, errc::invalid_argument);
  }
}

}  // namespace
}  // namespace outrider::broker
