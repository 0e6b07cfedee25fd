// rabbitmq_backend without RabbitMQ: metadata parsing, registration and
// behaviour while RabbitMQ is unreachable (publishes refused with
// `unavailable`, never accepted). The conformance suite against a real node
// is tests/backends/rabbitmq_backend_process_test.cpp.
#include "backends/rabbitmq/rabbitmq_backend.h"

#include <future>
#include <gtest/gtest.h>

#include "backends/registry.h"
#include "config/node.h"

namespace outrider::backends {
namespace {

using namespace std::chrono_literals;

config::node yaml(const std::string& text) {
  auto n = config::parse_yaml(text, "component.yaml");
  EXPECT_TRUE(n.ok());
  return n.ok() ? *n : config::node{};
}

TEST(rabbitmq_backend, metadata_defaults_and_keys) {
  auto d = parse_rabbitmq_backend_options(config::node{});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->queue_type, "quorum");
  EXPECT_EQ(d->delay_queue_type, "quorum");
  auto o = parse_rabbitmq_backend_options(
      yaml("connectionString: amqps://u:p@rabbit:5671/prod\nqueueType: classic\n"
           "heartbeat: 5s\ncaCert: /etc/ca.pem\nclientCert: /c.pem\nclientKey: /k.pem\n"
           "verifyPeer: false\nduePrefetch: 100\n"));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->url, "amqps://u:p@rabbit:5671/prod");
  EXPECT_EQ(o->queue_type, "classic");
  EXPECT_EQ(o->heartbeat, 5s);
  EXPECT_EQ(o->ca_cert_file, "/etc/ca.pem");
  EXPECT_FALSE(o->verify_peer);
  EXPECT_EQ(o->due_prefetch, 100U);
}

TEST(rabbitmq_backend, bad_metadata_names_the_key) {
  for (const char* text : {"conectionString: x\n", "connectionString: http://x\n",
                           "queueType: mirrored\n", "heartbeat: soon\n", "clientCert: /c.pem\n"}) {
    auto bad = parse_rabbitmq_backend_options(yaml(text));
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().code, errc::config_invalid) << text;
  }
  auto bad = parse_rabbitmq_backend_options(yaml("queueType: mirrored\n"));
  EXPECT_NE(bad.error().message.find("queueType"), std::string::npos) << bad.error().message;
}

TEST(rabbitmq_backend, unreachable_rabbitmq_refuses_publishes_as_unavailable) {
  auto b = create("rabbitmq",
                  yaml("connectionString: amqp://127.0.0.1:1/\nconnectTimeout: 200ms\n"), {});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)->type(), "rabbitmq");
  std::promise<result<std::vector<publish_outcome>>> p;
  (*b)->publish({message{"t", {}, {}, "x", {}}},
                [&](result<std::vector<publish_outcome>> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::unavailable);
  std::promise<status> h;
  (*b)->health([&](status s) { h.set_value(std::move(s)); });
  EXPECT_EQ(h.get_future().get().error().code, errc::unavailable);
  (*b)->close();
  std::promise<status> after;
  (*b)->health([&](status s) { after.set_value(std::move(s)); });
  EXPECT_EQ(after.get_future().get().error().code, errc::shutting_down);
}

}  // namespace
}  // namespace outrider::backends
