// embedded_backend without a broker: metadata parsing and behaviour while the
// broker is unreachable. The conformance suite against a real broker process
// is tests/backends/embedded_backend_process_test.cpp.
#include "backends/embedded/embedded_backend.h"

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

TEST(embedded_backend, metadata_defaults_and_keys) {
  auto d = parse_embedded_backend_options(config::node{});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->address, "127.0.0.1:7450");
  auto o = parse_embedded_backend_options(
      yaml("address: unix:/run/b.sock\nconnectTimeout: 250ms\nmaxReconnectInterval: 1s\n"));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->address, "unix:/run/b.sock");
  EXPECT_EQ(o->connect_timeout, 250ms);
  EXPECT_EQ(o->max_reconnect_interval, 1s);
}

TEST(embedded_backend, bad_metadata_names_the_key) {
  auto bad = parse_embedded_backend_options(yaml("adress: x\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, errc::config_invalid);
  EXPECT_NE(bad.error().message.find("adress"), std::string::npos) << bad.error().message;
  auto bad_duration = parse_embedded_backend_options(yaml("connectTimeout: soon\n"));
  ASSERT_FALSE(bad_duration.ok());
  EXPECT_NE(bad_duration.error().message.find("connectTimeout"), std::string::npos);
}

TEST(embedded_backend, is_registered_as_embedded) {
  auto b = create("embedded", yaml("address: 127.0.0.1:1\n"), {});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)->type(), "embedded");
  (*b)->close();
}

TEST(embedded_backend, without_a_broker_calls_fail_unavailable_and_close_is_prompt) {
  embedded_backend_options o;
  o.address = "127.0.0.1:1";  // nothing listens on port 1
  o.connect_timeout = 500ms;
  embedded_backend b(o);
  std::promise<status> h;
  b.health([&](status s) { h.set_value(std::move(s)); });
  auto hs = h.get_future().get();
  ASSERT_FALSE(hs.ok());
  EXPECT_EQ(hs.error().code, errc::unavailable);
  std::promise<result<std::vector<publish_outcome>>> p;
  b.publish({message{"t", {}, {}, "x", {}}},
            [&](result<std::vector<publish_outcome>> r) { p.set_value(std::move(r)); });
  auto pr = p.get_future().get();
  ASSERT_FALSE(pr.ok());
  EXPECT_EQ(pr.error().code, errc::unavailable);
  std::promise<result<subscription_handle>> s;
  b.subscribe(
      {"t", "a", 0, {}, 1}, [](delivery) {},
      [&](result<subscription_handle> r) { s.set_value(std::move(r)); });
  EXPECT_EQ(s.get_future().get().error().code, errc::unavailable);
  const auto start = std::chrono::steady_clock::now();
  b.close();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  std::promise<status> after;
  b.health([&](status st) { after.set_value(std::move(st)); });
  EXPECT_EQ(after.get_future().get().error().code, errc::shutting_down);
}

TEST(embedded_backend, queue_name_joins_topic_and_app_id) {
  EXPECT_EQ(embedded_backend::queue_name("orders", "billing"), "orders.billing");
}

}  // namespace
}  // namespace outrider::backends
