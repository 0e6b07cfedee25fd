#include "sidecar/subscription.h"

#include <gtest/gtest.h>

namespace outrider::sidecar {
namespace {

TEST(subscription, parses_dapr_programmatic_json) {
  auto subs = parse_subscriptions_json(R"([
    {"pubsubname":"pubsub","topic":"orders","route":"orders",
     "metadata":{"rawPayload":"\"true\"","maxConcurrent":5}},
    {"pubsubname":"pubsub","topic":"expiry","deadLetterTopic":"expiry-dead",
     "routes":{"rules":[{"match":"event.type == \"expire\"","path":"/expire"}],"default":"/other"}},
    {"pubsubname":"pubsub","topic":"s","route":"/s","metadata":"{\"rawPayload\":\"false\"}"}
  ])");
  ASSERT_TRUE(subs.ok()) << subs.error().message;
  ASSERT_EQ(subs->size(), 3u);
  const auto& a = (*subs)[0];
  EXPECT_EQ(a.route, "/orders");
  EXPECT_TRUE(a.raw_payload);  // JSON-stringified value
  ASSERT_EQ(a.metadata.size(), 2u);
  EXPECT_EQ(a.metadata[1].second, "5");
  const auto& b = (*subs)[1];
  EXPECT_EQ(b.dead_letter_topic, "expiry-dead");
  EXPECT_EQ(b.routes.select(R"({"type":"expire"})"), "/expire");
  EXPECT_EQ(b.routes.select(R"({"type":"x"})"), "/other");
  EXPECT_FALSE((*subs)[2].raw_payload);  // whole metadata map JSON-stringified
  EXPECT_EQ((*subs)[2].metadata.size(), 1u);
}

TEST(subscription, rejects_bad_json_with_the_entry) {
  EXPECT_FALSE(parse_subscriptions_json("{").ok());
  EXPECT_FALSE(parse_subscriptions_json(R"({"topic":"x"})").ok());
  auto no_topic = parse_subscriptions_json(R"([{"pubsubname":"p","route":"/x"}])");
  ASSERT_FALSE(no_topic.ok());
  EXPECT_NE(no_topic.error().message.find("subscription 0: missing \"topic\""), std::string::npos);
  auto no_route = parse_subscriptions_json(R"([{"pubsubname":"p","topic":"t"}])");
  ASSERT_FALSE(no_route.ok());
  EXPECT_NE(no_route.error().message.find("needs a route"), std::string::npos);
  auto bad_rule = parse_subscriptions_json(
      R"([{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"size(event) > 1","path":"/a"}]}}])");
  ASSERT_FALSE(bad_rule.ok());
  EXPECT_NE(bad_rule.error().message.find("size(event) > 1"), std::string::npos);
  EXPECT_NE(bad_rule.error().message.find("position 1"), std::string::npos);
  EXPECT_TRUE(parse_subscriptions_json("[]")->empty());
}

TEST(subscription, parses_declarative_yaml_with_positions) {
  auto doc = config::parse_yaml(R"(subscriptions:
  - pubsubname: pubsub
    topic: orders
    routes:
      rules:
        - match: event.type == "created"
          path: /created
      default: /orders
    deadLetterTopic: orders-dead
    metadata:
      rawPayload: "false"
)",
                                "outrider.yaml");
  ASSERT_TRUE(doc.ok());
  auto subs = parse_subscriptions_yaml(*doc->find("subscriptions"));
  ASSERT_TRUE(subs.ok()) << subs.error().message;
  ASSERT_EQ(subs->size(), 1u);
  EXPECT_EQ((*subs)[0].kind, "declarative");
  EXPECT_EQ((*subs)[0].routes.select(R"({"type":"created"})"), "/created");
  EXPECT_EQ((*subs)[0].dead_letter_topic, "orders-dead");

  auto bad = config::parse_yaml(R"(subscriptions:
  - pubsubname: pubsub
    topic: orders
    routes:
      rules:
        - match: event.type =~ "x"
          path: /a
)",
                                "outrider.yaml");
  ASSERT_TRUE(bad.ok());
  auto r = parse_subscriptions_yaml(*bad->find("subscriptions"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::config_invalid);
  EXPECT_NE(r.error().message.find("outrider.yaml:6:"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("event.type =~"), std::string::npos);

  auto unknown = config::parse_yaml("subscriptions:\n  - pubsubname: p\n    topik: t\n", "f.yaml");
  auto u = parse_subscriptions_yaml(*unknown->find("subscriptions"));
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("unknown key 'topik'"), std::string::npos);
}

}  // namespace
}  // namespace outrider::sidecar
