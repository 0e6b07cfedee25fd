// The rabbitmq backend against a real RabbitMQ node (Debian's rabbitmq-server,
// started privately by the test): the backend conformance suite
// (src/backends/testing/conformance.h) and interoperability with a plain AMQP
// client (pika). Skips, saying so, when rabbitmq-server is not installed.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <boost/json.hpp>
#include <future>
#include <gtest/gtest.h>
#include <thread>

#include "backends/rabbitmq/rabbitmq_backend.h"
#include "backends/testing/conformance.h"
#include "rabbitmq_server.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using backends::conformance::backend_conformance;
using backends::conformance::sink;

// One node for the whole binary (it takes seconds to boot); queues and topics
// are unique per test.
class rabbitmq_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!testing::rabbitmq_installed()) return;
    server_ = std::make_unique<testing::rabbitmq_server>("conformance");
    ASSERT_TRUE(server_->start()) << server_->server_output();
  }
  void TearDown() override { server_.reset(); }
  static std::string url() { return server_ ? server_->url() : std::string(); }

 private:
  static inline std::unique_ptr<testing::rabbitmq_server> server_;
};

[[maybe_unused]] auto* const environment =
    ::testing::AddGlobalTestEnvironment(new rabbitmq_environment);

// Bodies of a queue's messages, read with basic.get on a private connection
// and left in the queue (never acked; closing the connection requeues them).
std::vector<std::string> queue_bodies(const std::string& queue) {
  std::vector<std::string> bodies;
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* sock = amqp_tcp_socket_new(conn);
  amqp_connection_info info{};
  std::string url = rabbitmq_environment::url();
  amqp_parse_url(url.data(), &info);
  if (amqp_socket_open(sock, info.host, info.port) == AMQP_STATUS_OK &&
      amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type ==
          AMQP_RESPONSE_NORMAL) {
    amqp_channel_open(conn, 1);
    for (int i = 0; i < 100; ++i) {
      amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue.c_str()), 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL || r.reply.id != AMQP_BASIC_GET_OK_METHOD) break;
      amqp_message_t m{};
      if (amqp_read_message(conn, 1, &m, 0).reply_type != AMQP_RESPONSE_NORMAL) break;
      bodies.emplace_back(static_cast<const char*>(m.body.bytes), m.body.len);
      amqp_destroy_message(&m);
    }
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn);
  return bodies;
}

// A backend once connected (the first connection declares the delay topology).
std::shared_ptr<backends::backend> make_backend(const std::string& url,
                                                bool cloud_events_binary = false) {
  backends::rabbitmq_backend_options o;
  o.url = url;
  o.cloud_events_binary = cloud_events_binary;
  o.max_reconnect_interval = 500ms;
  o.client_name = "outrider-conformance";
  auto b = std::make_shared<backends::rabbitmq_backend>(o);
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    std::promise<status> p;
    b->health([&](status s) { p.set_value(std::move(s)); });
    if (p.get_future().get().ok()) break;
    std::this_thread::sleep_for(50ms);
  }
  return b;
}

std::vector<backends::conformance::target> targets() {
  if (!testing::rabbitmq_installed()) {
    std::fprintf(stderr,
                 "rabbitmq-server is not installed (apt-get install rabbitmq-server): "
                 "the rabbitmq backend tests are skipped\n");
    return {};
  }
  backends::conformance::target t;
  t.name = "rabbitmq";
  t.make = [] { return make_backend(rabbitmq_environment::url()); };
  t.advance = [](backends::backend&, nanoseconds d) { std::this_thread::sleep_for(d); };
  t.now = [](backends::backend&) { return std::chrono::system_clock::now(); };
  t.dead_letter_bodies = [](backends::backend&, const std::string& topic,
                            const std::string& app_id) {
    return queue_bodies(backends::rabbitmq_backend::dead_letter_queue_name(topic, app_id));
  };
  t.short_lease = 1s;
  return {t};
}

INSTANTIATE_TEST_SUITE_P(rabbitmq, backend_conformance, ::testing::ValuesIn(targets()),
                         backends::conformance::target_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(backend_conformance);

template <class T, class Call>
T call(Call c) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  c([p](T v) { p->set_value(std::move(v)); });
  EXPECT_EQ(f.wait_for(15s), std::future_status::ready);
  return f.get();
}

bool pika_installed() {
  testing::process p({"/usr/bin/python3", "-c", "import pika"});
  return p.wait(30s).value_or(1) == 0;
}

// Runs tests/backends/rabbitmq_pika.py; its last output line (JSON) or "".
std::string pika(std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/python3",
                             std::string(OUTRIDER_SOURCE_DIR) + "/tests/backends/rabbitmq_pika.py",
                             rabbitmq_environment::url()});
  testing::process p(std::move(args), testing::process_options{{}, "", "pika"});
  const auto code = p.wait(60s);
  EXPECT_EQ(code.value_or(-1), 0) << p.output();
  std::string out = p.output();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const auto nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

// What an Outrider app publishes, a plain AMQP client consumes (structured
// CloudEvent body, content-type property, traceparent/tracestate headers,
// message-id = the Outrider id), and the other way round.
TEST(rabbitmq_interop, pika_consumes_what_outrider_publishes_and_publishes_what_it_receives) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  if (!pika_installed()) GTEST_SKIP() << "python3-pika is not installed";
  auto b = make_backend(rabbitmq_environment::url());

  // Outrider -> pika.
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string event =
      R"({"specversion":"1.0","id":"e1","source":"orders","type":"com.dapr.event.sent",)"
      R"("datacontenttype":"application/json","data":{"orderId":42},"topic":"interop-out"})";
  EXPECT_EQ(pika({"prepare", "interop-out", "pika-out"}), "ready");
  result<std::vector<backends::publish_outcome>> out = error(errc::unavailable, "");
  for (int i = 0; i < 100; ++i) {
    out = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
      b->publish({backends::message{"interop-out",
                                    {},
                                    {{"content-type", "application/cloudevents+json"},
                                     {"traceparent", traceparent},
                                     {"tracestate", "vendor=1"}},
                                    event,
                                    {}}},
                 done);
    });
    if (out.ok()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_TRUE(out->at(0).outcome.ok());
  const auto got = boost::json::parse(pika({"get", "pika-out"})).as_object();
  EXPECT_EQ(got.at("content_type").as_string(), "application/cloudevents+json");
  EXPECT_EQ(got.at("message_id").as_string(), out->at(0).id.to_string());
  EXPECT_EQ(got.at("traceparent").as_string(), traceparent);
  EXPECT_EQ(got.at("tracestate").as_string(), "vendor=1");
  EXPECT_EQ(boost::json::parse(got.at("body").as_string()).at("data").at("orderId").as_int64(), 42);

  // pika -> Outrider.
  sink s;
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    b->subscribe({"interop-in", "consumer", 3, 30s, 10}, s.fn(), done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ(pika({"publish", "interop-in", traceparent}), "published");
  ASSERT_TRUE(s.wait_for(1, 20s));
  const backends::delivery d = s.at(0);
  EXPECT_EQ(d.topic, "interop-in");
  EXPECT_EQ(d.attempt, 1U);
  ASSERT_NE(backends::find_header(d.headers, "traceparent"), nullptr);
  EXPECT_EQ(*backends::find_header(d.headers, "traceparent"), traceparent);
  ASSERT_NE(backends::find_header(d.headers, "content-type"), nullptr);
  EXPECT_EQ(*backends::find_header(d.headers, "content-type"), "application/cloudevents+json");
  EXPECT_EQ(boost::json::parse(d.body).at("data").at("from").as_string(), "pika");
  // Ids stay stable across redeliveries even without a message-id from the client.
  EXPECT_TRUE(call<status>([&](auto done) {
                b->settle(d.handle, backends::settle_action::retry_after({}), done);
              }).ok());
  ASSERT_TRUE(s.wait_for(2, 20s));
  EXPECT_EQ(s.at(1).id, d.id);
  EXPECT_EQ(s.at(1).attempt, 2U);
  EXPECT_TRUE(call<status>([&](auto done) {
                b->settle(s.at(1).handle, backends::settle_action::ack(), done);
              }).ok());
  b->close();
}

// CloudEvents in AMQP binary mode (the CloudEvents AMQP binding): an Outrider
// app's event reaches pika with its attributes as `cloudEvents:` application
// properties and its data as the body; a binary-mode event from pika reaches
// an Outrider app as the structured event the sidecar hands apps.
TEST(rabbitmq_interop, cloud_events_binary_mode_both_ways_with_pika) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  if (!pika_installed()) GTEST_SKIP() << "python3-pika is not installed";
  auto b = make_backend(rabbitmq_environment::url(), /*cloud_events_binary=*/true);
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string event =
      R"({"specversion":"1.0","id":"e2","source":"orders","type":"com.dapr.event.sent",)"
      R"("datacontenttype":"application/json","data":{"orderId":43},"topic":"binary-out",)"
      R"("traceparent":")" +
      traceparent + R"("})";
  EXPECT_EQ(pika({"prepare", "binary-out", "pika-binary-out"}), "ready");
  auto out = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    b->publish({backends::message{
                   "binary-out",
                   {},
                   {{"content-type", "application/cloudevents+json"}, {"traceparent", traceparent}},
                   event,
                   {}}},
               done);
  });
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_TRUE(out->at(0).outcome.ok());
  const auto got = boost::json::parse(pika({"get", "pika-binary-out"})).as_object();
  EXPECT_EQ(got.at("content_type").as_string(), "application/json");
  EXPECT_EQ(boost::json::parse(got.at("body").as_string()).at("orderId").as_int64(), 43);
  const auto& headers = got.at("headers").as_object();
  EXPECT_EQ(headers.at("cloudEvents:specversion").as_string(), "1.0");
  EXPECT_EQ(headers.at("cloudEvents:id").as_string(), "e2");
  EXPECT_EQ(headers.at("cloudEvents:source").as_string(), "orders");
  EXPECT_EQ(headers.at("cloudEvents:type").as_string(), "com.dapr.event.sent");
  EXPECT_EQ(headers.at("cloudEvents:traceparent").as_string(), traceparent);
  EXPECT_FALSE(headers.contains("cloudEvents:datacontenttype"));
  EXPECT_EQ(got.at("traceparent").as_string(), traceparent);

  // pika (binary) -> a structured-mode backend (receiving does not depend on the mode).
  auto structured = make_backend(rabbitmq_environment::url());
  sink s;
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    structured->subscribe({"binary-in", "consumer", 3, 30s, 10}, s.fn(), done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ(pika({"publish", "binary-in", traceparent, "binary"}), "published");
  ASSERT_TRUE(s.wait_for(1, 20s));
  const backends::delivery d = s.at(0);
  ASSERT_NE(backends::find_header(d.headers, "content-type"), nullptr);
  EXPECT_EQ(*backends::find_header(d.headers, "content-type"), "application/cloudevents+json");
  ASSERT_NE(backends::find_header(d.headers, "traceparent"), nullptr);
  const auto in = boost::json::parse(d.body).as_object();
  EXPECT_EQ(in.at("specversion").as_string(), "1.0");
  EXPECT_EQ(in.at("id").as_string(), "from-pika-binary");
  EXPECT_EQ(in.at("source").as_string(), "pika");
  EXPECT_EQ(in.at("datacontenttype").as_string(), "application/json");
  EXPECT_EQ(in.at("traceparent").as_string(), traceparent);
  EXPECT_EQ(in.at("data").at("from").as_string(), "pika");
  EXPECT_TRUE(call<status>([&](auto done) {
                structured->settle(d.handle, backends::settle_action::ack(), done);
              }).ok());
  structured->close();
  b->close();
}

// A backend configured with another journal retention than the one the
// journal was declared with (RabbitMQ refuses inequivalent arguments) uses the
// existing journal instead of failing to connect.
TEST(rabbitmq_cancel, another_journal_retention_uses_the_existing_journal) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  make_backend(rabbitmq_environment::url())->close();  // the journal exists, 7 days
  backends::rabbitmq_backend_options o;
  o.url = rabbitmq_environment::url();
  o.max_reconnect_interval = 500ms;
  o.journal_retention = std::chrono::hours(1);
  backends::rabbitmq_backend b(o);
  status health = error(errc::unavailable, "");
  for (auto end = std::chrono::steady_clock::now() + 60s;
       !health.ok() && std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(50ms)) {
    health = call<status>([&](auto done) { b.health(done); });
  }
  EXPECT_TRUE(health.ok()) << health.error().message;
  EXPECT_EQ(call<status>([&](auto done) {
              b.cancel_scheduled(id128{5, 5}, done);
            })
                .error()
                .code,
            errc::message_not_found);
  b.close();
}

// Cancel works from any backend of the system, also once the publishing one is
// gone (a sidecar restart): the schedule journal, a RabbitMQ stream every
// backend reads, is the durable index of scheduled and cancelled ids.
TEST(rabbitmq_cancel, from_another_backend_and_after_the_publisher_is_gone) {
  if (!testing::rabbitmq_installed()) GTEST_SKIP() << "rabbitmq-server is not installed";
  const std::string url = rabbitmq_environment::url();
  const std::string topic = "cancel-any-backend";
  auto consumer = make_backend(url);
  sink s;
  auto sub = call<result<backends::subscription_handle>>([&](auto done) {
    consumer->subscribe({topic, "cancel-any", 3, 30s, 10}, s.fn(), done);
  });
  ASSERT_TRUE(sub.ok()) << sub.error().message;

  auto publisher = make_backend(url);
  const auto due = std::chrono::system_clock::now() + 20s;
  auto out = call<result<std::vector<backends::publish_outcome>>>([&](auto done) {
    publisher->publish({backends::message{topic, {}, {}, "kept", due},
                        backends::message{topic, {}, {}, "cancelled-elsewhere", due},
                        backends::message{topic, {}, {}, "cancelled-after-restart", due}},
                       done);
  });
  ASSERT_TRUE(out.ok()) << out.error().message;
  for (const auto& o : *out) ASSERT_TRUE(o.outcome.ok()) << o.outcome.error().message;
  publisher->close();  // the publishing sidecar is gone; its memory with it

  // Another running backend: it learns of the schedule from the journal
  // (within moments; poll rather than assume how soon).
  auto cancel = [](backends::backend& b, const id128& id) {
    return call<status>([&](auto done) { b.cancel_scheduled(id, done); });
  };
  status first = cancel(*consumer, out->at(1).id);
  for (int i = 0; i < 100 && !first.ok() && first.error().code == errc::message_not_found; ++i) {
    std::this_thread::sleep_for(50ms);
    first = cancel(*consumer, out->at(1).id);
  }
  EXPECT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(cancel(*consumer, out->at(1).id).error().code, errc::message_not_found);
  EXPECT_EQ(cancel(*consumer, id128{9, 9}).error().code, errc::message_not_found);

  // A backend started after the publisher went away (a restart): it reads the
  // journal from its start before it answers.
  auto restarted = make_backend(url);
  EXPECT_TRUE(cancel(*restarted, out->at(2).id).ok());
  EXPECT_EQ(cancel(*restarted, out->at(1).id).error().code, errc::message_not_found);

  ASSERT_TRUE(s.wait_for(1, 120s));
  EXPECT_EQ(s.at(0).body, "kept");
  EXPECT_GE(std::chrono::system_clock::now(), due);
  EXPECT_TRUE(call<status>([&](auto done) {
                consumer->settle(s.at(0).handle, backends::settle_action::ack(), done);
              }).ok());
  EXPECT_EQ(cancel(*restarted, out->at(0).id).error().code, errc::message_not_scheduled);
  // The cancelled ones came due with the kept one; give them time to show up.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(s.size(), 1U);
  restarted->close();
  consumer->close();
}

}  // namespace
}  // namespace outrider
