// The store-pickup demo's services on their own, without Outrider: each
// service process next to a stand-in for its sidecar (fake_sidecar.py) or
// driven directly, to check what the end-to-end test cannot force — duplicate
// and late deliveries, a failing refund, events out of order.
#include <boost/json.hpp>
#include <chrono>
#include <gtest/gtest.h>
#include <string>
#include <thread>

#include "demo_http.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using demo_test::http;
using demo_test::parse_or_null;
using testing::process;
namespace json = boost::json;

const std::string example_dir = std::string(OUTRIDER_SOURCE_DIR) + "/examples/store-pickup";
const std::string fake_sidecar = std::string(OUTRIDER_SOURCE_DIR) + "/tests/demo/fake_sidecar.py";
constexpr auto start_timeout = 30s;

// A CloudEvent as the sidecar delivers it.
std::string cloud_event(const std::string& topic, const json::object& data) {
  return json::serialize(json::object{{"specversion", "1.0"},
                                      {"id", "ev-" + std::string(data.at("orderId").as_string())},
                                      {"type", "com.dapr.event.sent"},
                                      {"topic", topic},
                                      {"pubsubname", "pubsub"},
                                      {"datacontenttype", "application/json"},
                                      {"data", data}});
}

std::string status_of(const std::string& body) {
  const json::value v = parse_or_null(body);
  if (!v.is_object() || !v.as_object().contains("status")) return "";
  return std::string(v.at("status").as_string());
}

class demo_orders : public ::testing::Test {
 protected:
  void SetUp() override {
    sidecar_port_ = testing::free_port();
    sidecar_ = std::make_unique<process>(
        std::vector<std::string>{"python3", fake_sidecar, std::to_string(sidecar_port_)},
        testing::process_options{{}, "", "fake_sidecar.py"});
    ASSERT_TRUE(sidecar_->wait_for_output("fake sidecar listening", start_timeout))
        << sidecar_->output();
    app_port_ = testing::free_port();
    orders_ = std::make_unique<process>(
        std::vector<std::string>{ORDERS_BINARY},
        testing::process_options{{{"APP_PORT", std::to_string(app_port_)},
                                  {"DAPR_HTTP_PORT", std::to_string(sidecar_port_)},
                                  {"RESERVATION_WINDOW", "3s"},
                                  {"DATA_DIR", data_.path() + "/orders"}},
                                 "",
                                 "orders"});
    ASSERT_TRUE(orders_->wait_for_output("orders: listening", start_timeout)) << orders_->output();
  }

  json::array calls(const std::string& path_prefix) {
    json::array out;
    const json::value all = parse_or_null(http(sidecar_port_, "GET", "/_calls").body);
    if (!all.is_array()) return out;
    for (const auto& c : all.as_array())
      if (std::string(c.at("path").as_string()).starts_with(path_prefix)) out.push_back(c);
    return out;
  }

  // Places and reserves an order; returns its id.
  std::string place_and_reserve(const std::string& id) {
    const auto placed = http(
        app_port_, "POST", "/orders",
        R"({"orderId":")" + id +
            R"(","customer":"Ada","email":"ada@example.com","item":"lamp","amountCents":3900})",
        {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
    EXPECT_EQ(placed.status, 201) << placed.body;
    const auto reserved = http(app_port_, "POST", "/orders/" + id + "/reserve");
    EXPECT_EQ(reserved.status, 200) << reserved.body;
    return id;
  }

  std::string expire(const std::string& id) {
    json::object data{{"orderId", id}};
    const auto r = http(app_port_, "POST", "/events/expire-reservation",
                        cloud_event("expire-reservation", data));
    EXPECT_EQ(r.status, 200) << r.body;
    return status_of(r.body);
  }

  std::string order_status(const std::string& id) {
    const json::value v = parse_or_null(http(app_port_, "GET", "/orders/" + id).body);
    return v.is_object() ? std::string(v.at("status").as_string()) : "";
  }

  testing::temp_dir data_{"outrider-demo-services"};
  std::uint16_t sidecar_port_ = 0, app_port_ = 0;
  std::unique_ptr<process> sidecar_, orders_;
};

TEST_F(demo_orders, reserve_schedules_the_expiry_in_the_order_trace) {
  place_and_reserve("o-1");
  const auto charges = calls("/v1.0/invoke/payments/method/charge");
  ASSERT_EQ(charges.size(), 1u);
  const auto expiry = calls("/v1.0/publish/pubsub/expire-reservation");
  ASSERT_EQ(expiry.size(), 1u);
  EXPECT_EQ(expiry[0].at("path").as_string(),
            "/v1.0/publish/pubsub/expire-reservation?metadata.deliverAfter=3s");
  // The delayed message continues the placement's trace.
  EXPECT_EQ(expiry[0].at("traceparent").as_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(calls("/v1.0/publish/pubsub/order-placed").size(), 1u);
  EXPECT_EQ(calls("/v1.0/publish/pubsub/order-reserved").size(), 1u);
  EXPECT_EQ(order_status("o-1"), "reserved");
}

TEST_F(demo_orders, pickup_cancels_the_expiry_and_a_late_expiry_exits_early) {
  place_and_reserve("o-2");
  const auto picked = http(app_port_, "POST", "/orders/o-2/pickup");
  ASSERT_EQ(picked.status, 200) << picked.body;
  const auto cancels = calls("/v1.0-alpha1/outrider/scheduled/pubsub/");
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].at("method").as_string(), "DELETE");
  // The expiry arrives anyway (the cancel came too late): nothing happens.
  EXPECT_EQ(expire("o-2"), "SUCCESS");
  EXPECT_EQ(order_status("o-2"), "completed");
  EXPECT_TRUE(calls("/v1.0/invoke/payments/method/refund").empty());
  EXPECT_TRUE(calls("/v1.0/publish/pubsub/reservation-expired").empty());
}

TEST_F(demo_orders, a_duplicate_expiry_does_not_refund_again) {
  place_and_reserve("o-3");
  EXPECT_EQ(expire("o-3"), "SUCCESS");
  EXPECT_EQ(order_status("o-3"), "cancelled");
  EXPECT_EQ(expire("o-3"), "SUCCESS");  // delivered again (at least once)
  EXPECT_EQ(calls("/v1.0/invoke/payments/method/refund").size(), 1u);
  // Published again on the duplicate: subscribers are idempotent per order.
  EXPECT_EQ(calls("/v1.0/publish/pubsub/reservation-expired").size(), 2u);
  // Too late to pick up now.
  EXPECT_EQ(http(app_port_, "POST", "/orders/o-3/pickup").status, 409);
}

TEST_F(demo_orders, a_failed_refund_is_retried_by_the_next_delivery) {
  place_and_reserve("o-4");
  ASSERT_EQ(http(sidecar_port_, "POST", "/_config", R"({"refundStatus":502})").status, 200);
  EXPECT_EQ(expire("o-4"), "RETRY");
  EXPECT_EQ(order_status("o-4"), "expiring");
  EXPECT_EQ(http(app_port_, "POST", "/orders/o-4/pickup").status, 409);
  ASSERT_EQ(http(sidecar_port_, "POST", "/_config", R"({"refundStatus":200})").status, 200);
  EXPECT_EQ(expire("o-4"), "SUCCESS");
  EXPECT_EQ(order_status("o-4"), "cancelled");
  EXPECT_EQ(calls("/v1.0/invoke/payments/method/refund").size(), 2u);
  EXPECT_EQ(calls("/v1.0/publish/pubsub/reservation-expired").size(), 1u);
}

TEST_F(demo_orders, placing_again_with_the_same_id_is_the_same_order) {
  place_and_reserve("o-5");
  const auto again =
      http(app_port_, "POST", "/orders",
           R"({"orderId":"o-5","customer":"Ada","email":"a@x","item":"lamp","amountCents":3900})");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(calls("/v1.0/invoke/payments/method/charge").size(), 1u);
  EXPECT_EQ(order_status("o-5"), "reserved");
}

// notifications and warehouse are driven directly with CloudEvents.
class demo_python_services : public ::testing::Test {
 protected:
  void start(const std::string& script) {
    port_ = testing::free_port();
    app_ = std::make_unique<process>(
        std::vector<std::string>{"python3", example_dir + "/" + script},
        testing::process_options{{{"APP_PORT", std::to_string(port_)}, {"DATA_DIR", data_.path()}},
                                 "",
                                 script.substr(0, script.find('/'))});
    ASSERT_TRUE(app_->wait_for_output("listening on", start_timeout)) << app_->output();
  }
  std::string deliver(const std::string& topic, const json::object& data) {
    const auto r = http(port_, "POST", "/events/" + topic, cloud_event(topic, data));
    EXPECT_EQ(r.status, 200) << r.body;
    const json::value v = parse_or_null(r.body);
    return v.is_object() ? std::string(v.at("status").as_string()) : "";
  }
  testing::temp_dir data_{"outrider-demo-services"};
  std::uint16_t port_ = 0;
  std::unique_ptr<process> app_;
};

TEST_F(demo_python_services, notifications_email_once_per_order_and_topic) {
  start("notifications/app.py");
  const json::object order{{"orderId", "o-9"},
                           {"customer", "Ada"},
                           {"email", "ada@example.com"},
                           {"item", "lamp"},
                           {"amountCents", 3900}};
  EXPECT_EQ(deliver("reservation-expired", order), "SUCCESS");
  EXPECT_EQ(deliver("reservation-expired", order), "SUCCESS");  // duplicate
  EXPECT_EQ(deliver("order-placed", order), "SUCCESS");
  const json::value v = parse_or_null(http(port_, "GET", "/emails?orderId=o-9").body);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.at("emails").as_array().size(), 2u);
  EXPECT_NE(app_->output().find("already emailed"), std::string::npos);
}

TEST_F(demo_python_services,
       warehouse_puts_an_expired_item_back_once_whatever_the_order_of_events) {
  start("warehouse/app.py");
  const json::object a{{"orderId", "o-a"}, {"item", "kettle"}};
  const json::object b{{"orderId", "o-b"}, {"item", "kettle"}};
  auto on_shelf = [&]() -> std::int64_t {
    const json::value v = parse_or_null(http(port_, "GET", "/stock").body);
    for (const auto& s : v.at("stock").as_array())
      if (s.at("item").as_string() == "kettle") return s.at("onShelf").as_int64();
    return -1;
  };
  const auto start_count = on_shelf();
  EXPECT_EQ(deliver("order-reserved", a), "SUCCESS");
  EXPECT_EQ(on_shelf(), start_count - 1);
  EXPECT_EQ(deliver("reservation-expired", a), "SUCCESS");
  EXPECT_EQ(deliver("reservation-expired", a), "SUCCESS");  // duplicate
  EXPECT_EQ(deliver("order-reserved", a), "SUCCESS");       // late duplicate
  EXPECT_EQ(on_shelf(), start_count);
  // Out of order: the expiry before the reservation leaves the shelf as it was.
  EXPECT_EQ(deliver("reservation-expired", b), "SUCCESS");
  EXPECT_EQ(deliver("order-reserved", b), "SUCCESS");
  EXPECT_EQ(on_shelf(), start_count);
  EXPECT_NE(http(port_, "GET", "/items/o-a").body.find("returned"), std::string::npos);
}

}  // namespace
}  // namespace outrider
