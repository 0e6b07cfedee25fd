#include "backends/rabbitmq/cloud_events_amqp.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

namespace outrider::backends {
namespace {

namespace ce = cloud_events_amqp;
namespace json = boost::json;

TEST(cloud_events_amqp, structured_json_event_to_binary_and_back) {
  header_list headers{{"content-type", "application/cloudevents+json"},
                      {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  std::string body =
      R"({"specversion":"1.0","id":"e1","source":"orders","type":"t","datacontenttype":"application/json",)"
      R"("data":{"orderId":42},"topic":"o","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})";
  ASSERT_TRUE(ce::to_binary(headers, body));
  EXPECT_EQ(json::parse(body), json::parse(R"({"orderId":42})"));
  EXPECT_EQ(*find_header(headers, "content-type"), "application/json");
  EXPECT_EQ(*find_header(headers, "cloudEvents:specversion"), "1.0");
  EXPECT_EQ(*find_header(headers, "cloudEvents:id"), "e1");
  EXPECT_EQ(*find_header(headers, "cloudEvents:source"), "orders");
  EXPECT_EQ(*find_header(headers, "cloudEvents:topic"), "o");
  EXPECT_EQ(find_header(headers, "cloudEvents:datacontenttype"), nullptr);
  EXPECT_NE(find_header(headers, "traceparent"), nullptr);  // other headers stay

  ASSERT_TRUE(ce::to_structured(headers, body));
  EXPECT_EQ(*find_header(headers, "content-type"), "application/cloudevents+json");
  const auto event = json::parse(body).as_object();
  EXPECT_EQ(event.at("id").as_string(), "e1");
  EXPECT_EQ(event.at("datacontenttype").as_string(), "application/json");
  EXPECT_EQ(event.at("data").at("orderId").as_int64(), 42);
  EXPECT_NE(find_header(headers, "traceparent"), nullptr);
}

TEST(cloud_events_amqp, text_and_binary_data) {
  header_list headers{{"content-type", "application/cloudevents+json"}};
  std::string body =
      R"({"specversion":"1.0","id":"t","source":"s","type":"t","datacontenttype":"text/plain","data":"hello"})";
  ASSERT_TRUE(ce::to_binary(headers, body));
  EXPECT_EQ(body, "hello");
  ASSERT_TRUE(ce::to_structured(headers, body));
  EXPECT_EQ(json::parse(body).at("data").as_string(), "hello");

  headers = {{"content-type", "application/cloudevents+json"}};
  body =
      R"({"specversion":"1.0","id":"b","source":"s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="})";
  ASSERT_TRUE(ce::to_binary(headers, body));
  EXPECT_EQ(body, std::string("\x00\x01\x02\xff", 4));
  ASSERT_TRUE(ce::to_structured(headers, body));
  EXPECT_EQ(json::parse(body).at("data_base64").as_string(), "AAEC/w==");
}

TEST(cloud_events_amqp, the_underscore_prefix_is_read_too) {
  header_list headers{{"cloudEvents_specversion", "1.0"},
                      {"cloudEvents_id", "u"},
                      {"cloudEvents_source", "pika"},
                      {"cloudEvents_type", "t"},
                      {"content-type", "application/json"}};
  std::string body = R"({"from":"pika"})";
  ASSERT_TRUE(ce::to_structured(headers, body));
  const auto event = json::parse(body).as_object();
  EXPECT_EQ(event.at("id").as_string(), "u");
  EXPECT_EQ(event.at("data").at("from").as_string(), "pika");
}

TEST(cloud_events_amqp, a_binary_mode_body_a_json_string_cannot_carry_goes_as_base64) {
  // From a foreign producer: text that is not UTF-8, JSON with a number no double holds
  // (written back it would be `Infinity`). The structured event stays valid JSON and
  // loses nothing.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"text/plain", "ok \xff\xfe"}, {"application/json", R"({"n":1e400})"}};
  for (const auto& [type, payload] : cases) {
    header_list headers{{"cloudEvents:specversion", "1.0"},
                        {"cloudEvents:id", "x"},
                        {"cloudEvents:source", "s"},
                        {"cloudEvents:type", "t"},
                        {"content-type", type}};
    std::string body = payload;
    ASSERT_TRUE(ce::to_structured(headers, body)) << type;
    boost::system::error_code ec;
    const auto event = json::parse(body, ec);
    ASSERT_FALSE(ec) << "not JSON: " << body;
    EXPECT_FALSE(event.as_object().contains("data")) << body;
    ASSERT_TRUE(ce::to_binary(headers, body)) << type;
    EXPECT_EQ(body, payload) << type;
  }
}

TEST(cloud_events_amqp, other_messages_are_left_alone) {
  header_list headers{{"content-type", "application/json"}};
  std::string body = R"({"a":1})";
  EXPECT_FALSE(ce::to_binary(headers, body));
  EXPECT_FALSE(ce::to_structured(headers, body));
  EXPECT_EQ(body, R"({"a":1})");
  headers = {{"content-type", "application/cloudevents+json"}};
  body = "not json";
  EXPECT_FALSE(ce::to_binary(headers, body));
  EXPECT_EQ(body, "not json");
}

}  // namespace
}  // namespace outrider::backends
