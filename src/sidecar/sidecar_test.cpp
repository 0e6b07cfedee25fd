// Whole-sidecar tests in one process: the sidecar on a loopback port with
// mem_backend, and a small test app (an http::server with a router).
#include "sidecar/sidecar.h"

#include <boost/json.hpp>
#include <future>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

#include "backends/testing/mem_backend.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "io/runtime.h"

namespace outrider::sidecar {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto wait_limit = 5s;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = wait_limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

class harness {
 public:
  // `deliveries`: the sidecar's delivery runtime (null: none).
  explicit harness(std::string subscriptions_json,
                   std::function<void(sidecar_options&)> tweak = nullptr,
                   io::runtime* deliveries = nullptr)
      : subscriptions_(std::move(subscriptions_json)) {
    rt_.start();
    app_rt_.start();
    app_router_.add_sync("GET", "/dapr/subscribe", [this](const http::request&) {
      return http::response::json(200, subscriptions_);
    });
    app_router_.add_sync("GET", "/healthz", [this](const http::request&) {
      return http::response{health_status_.load(), {}, {}};
    });
    app_router_.add_sync("POST", "/{*path}", [this](const http::request& req) {
      std::function<http::response(const http::request&)> b;
      {
        std::lock_guard lock(mutex_);
        received_.push_back(req);
        b = behaviour_;
      }
      return b ? b(req) : http::response::no_content();
    });
    app_ =
        std::make_unique<http::server>(app_rt_, http::server_options{}, app_router_.as_handler());
    EXPECT_TRUE(app_->start().ok());

    sidecar_options o;
    o.app_id = "orders-app";
    o.app_port = app_->port();
    o.http_port = 0;
    o.metrics_port = 0;
    o.retry.initial = 1ms;
    o.retry.max = 5ms;
    o.subscribe_retry_interval = 10ms;
    o.shutdown_grace = 1s;
    if (tweak) tweak(o);
    sidecar_ = std::make_unique<sidecar>(
        rt_, o, std::vector<pubsub_component>{{"pubsub", "mem", backend_}}, metrics_, deliveries);
    EXPECT_TRUE(sidecar_->start().ok());
    client_ = std::make_unique<http::client>(rt_.context(1));
  }

  ~harness() {
    sidecar_->stop();
    app_->stop(0s);
    backend_->close();
    client_.reset();
    rt_.stop();
    app_rt_.stop();
  }

  bool wait_subscribed() {
    return eventually([&] { return sidecar_->subscribed(); });
  }

  http::response call(std::string method, std::string target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::request req;
    req.method = std::move(method);
    req.target = target;
    req.body = std::move(body);
    for (auto& [k, v] : headers) req.headers.set(k, v);
    auto url =
        *http::url::parse("http://127.0.0.1:" + std::to_string(sidecar_->http_port()) + target);
    std::promise<result<http::response>> p;
    client_->send(url, std::move(req), 5s,
                  [&p](result<http::response> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message);
    return r ? std::move(*r) : http::response{};
  }

  void behave(std::function<http::response(const http::request&)> b) {
    std::lock_guard lock(mutex_);
    behaviour_ = std::move(b);
  }
  std::vector<http::request> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::size_t received_count() { return received().size(); }

  // Declared first so it is destroyed last: everything below holds sockets and
  // timers on its io_contexts.
  io::runtime rt_{2};
  io::runtime app_rt_{1};  // the test app's, apart from the sidecar's threads
  std::shared_ptr<backends::mem_backend> backend_ = std::make_shared<backends::mem_backend>();
  std::atomic<int> health_status_{200};
  metrics::registry metrics_;
  std::unique_ptr<sidecar> sidecar_;

 private:
  std::string subscriptions_;
  http::router app_router_;
  std::unique_ptr<http::server> app_;
  std::unique_ptr<http::client> client_;
  std::mutex mutex_;
  std::vector<http::request> received_;
  std::function<http::response(const http::request&)> behaviour_;
};

const char* orders_subscription = R"([{"pubsubname":"pubsub","topic":"orders",
  "routes":{"rules":[{"match":"event.type == \"special\"","path":"/special"}],"default":"/orders"}}])";

std::string error_code_of(const http::response& r) {
  return std::string(json::parse(r.body).as_object()["errorCode"].as_string());
}

bool has_metric(harness& h, std::string_view line) {
  return h.metrics_.expose().find(line) != std::string::npos;
}

TEST(sidecar, publish_is_delivered_to_the_matching_route) {
  harness h(orders_subscription);
  ASSERT_TRUE(h.wait_subscribed());
  auto r = h.call("POST", "/v1.0/publish/pubsub/orders", R"({"order":1})",
                  {{"content-type", "application/json"},
                   {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  ASSERT_EQ(r.status, 204);
  const std::string id(r.headers.get("outrider-message-id").value_or(""));
  EXPECT_EQ(id.size(), id128::text_size);
  auto special =
      h.call("POST", "/v1.0/publish/pubsub/orders?metadata.cloudevent.type=special", "x");
  ASSERT_EQ(special.status, 204);
  ASSERT_TRUE(eventually([&] { return h.received_count() == 2; }));
  auto got = h.received();
  std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.target < b.target; });
  EXPECT_EQ(got[0].target, "/orders");
  EXPECT_EQ(got[1].target, "/special");
  EXPECT_EQ(got[0].headers.get("content-type").value_or(""), "application/cloudevents+json");
  EXPECT_EQ(got[0].headers.get("traceparent").value_or(""),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto ce = json::parse(got[0].body).as_object();
  EXPECT_EQ(ce["id"], json::value(id));
  EXPECT_EQ(ce["source"], "orders-app");
  EXPECT_EQ(ce["data"].as_object()["order"], 1);
  ASSERT_TRUE(
      eventually([&] { return h.backend_->pending_for_test("orders", "orders-app") == 0; }));
  EXPECT_TRUE(
      has_metric(h, R"(outrider_sidecar_deliveries_total{topic="orders",outcome="success"} 2)"));
}

TEST(sidecar, retry_is_redelivered_after_backoff) {
  harness h(orders_subscription);
  ASSERT_TRUE(h.wait_subscribed());
  std::atomic<int> calls{0};
  h.behave([&](const http::request&) {
    return ++calls < 3 ? http::response::json(200, R"({"status":"RETRY"})")
                       : http::response::json(200, R"({"status":"SUCCESS"})");
  });
  ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", "x").status, 204);
  ASSERT_TRUE(eventually([&] { return calls.load() == 3; }));
  ASSERT_TRUE(
      eventually([&] { return h.backend_->pending_for_test("orders", "orders-app") == 0; }));
  auto got = h.received();
  EXPECT_EQ(json::parse(got[0].body).as_object()["id"], json::parse(got[2].body).as_object()["id"]);
  EXPECT_TRUE(has_metric(h, "outrider_sidecar_retries_total 2"));
}

TEST(sidecar, failures_beyond_max_attempts_are_dead_lettered) {
  harness h(orders_subscription, [](sidecar_options& o) { o.retry.max_attempts = 2; });
  ASSERT_TRUE(h.wait_subscribed());
  h.behave([](const http::request&) { return http::response::json(500, "{}"); });
  ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", "poison").status, 204);
  ASSERT_TRUE(eventually(
      [&] { return h.backend_->dead_letters_for_test("orders", "orders-app").size() == 1; }));
  EXPECT_EQ(h.received_count(), 2u);
  EXPECT_TRUE(has_metric(h, "outrider_sidecar_dead_letters_total 1"));
}

TEST(sidecar, drop_goes_to_the_dead_letter_topic) {
  harness h(
      R"([{"pubsubname":"pubsub","topic":"orders","route":"/orders","deadLetterTopic":"orders-dead"}])");
  ASSERT_TRUE(h.wait_subscribed());
  h.behave([](const http::request&) { return http::response::json(200, R"({"status":"DROP"})"); });
  auto r = h.call("POST", "/v1.0/publish/pubsub/orders", "x");
  ASSERT_TRUE(
      eventually([&] { return h.backend_->published_for_test("orders-dead").size() == 1; }));
  auto dead = h.backend_->published_for_test("orders-dead")[0];
  EXPECT_EQ(*backends::find_header(dead.headers, "outrider-original-id"),
            std::string(r.headers.get("outrider-message-id").value_or("")));
  ASSERT_TRUE(
      eventually([&] { return h.backend_->pending_for_test("orders", "orders-app") == 0; }));
}

TEST(sidecar, not_found_without_dead_letter_topic_is_dropped_and_counted) {
  harness h(orders_subscription);
  ASSERT_TRUE(h.wait_subscribed());
  h.behave([](const http::request&) { return http::response::json(404, "{}"); });
  ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", "x").status, 204);
  ASSERT_TRUE(eventually([&] { return has_metric(h, "outrider_sidecar_dropped_total 1"); }));
  ASSERT_TRUE(
      eventually([&] { return h.backend_->pending_for_test("orders", "orders-app") == 0; }));
  EXPECT_EQ(h.received_count(), 1u);
  EXPECT_TRUE(h.backend_->dead_letters_for_test("orders", "orders-app").empty());
}

TEST(sidecar, expired_messages_are_dropped_not_delivered) {
  harness h(orders_subscription, [](sidecar_options& o) {
    o.app_health.enabled = true;
    o.app_health.interval = 10ms;
    o.app_health.threshold = 1;
  });
  ASSERT_TRUE(h.wait_subscribed());
  h.health_status_ = 500;
  ASSERT_TRUE(eventually([&] { return !h.sidecar_->app_healthy(); }));
  ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders?metadata.ttlInSeconds=1", "x").status, 204);
  std::this_thread::sleep_for(1100ms);
  h.health_status_ = 200;
  ASSERT_TRUE(eventually([&] { return has_metric(h, R"(outcome="expired"} 1)"); }));
  EXPECT_EQ(h.received_count(), 0u);
}

TEST(sidecar, unhealthy_app_pauses_deliveries_and_loses_nothing) {
  harness h(orders_subscription, [](sidecar_options& o) {
    o.app_health.enabled = true;
    o.app_health.interval = 10ms;
    o.app_health.threshold = 2;
  });
  ASSERT_TRUE(h.wait_subscribed());
  h.health_status_ = 503;
  ASSERT_TRUE(eventually([&] { return !h.sidecar_->app_healthy(); }));
  EXPECT_EQ(h.call("GET", "/v1.0/healthz").status, 500);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", std::to_string(i)).status, 204);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(h.received_count(), 0u);
  EXPECT_TRUE(has_metric(h, "outrider_sidecar_app_healthy 0"));
  h.health_status_ = 200;
  ASSERT_TRUE(eventually([&] { return h.received_count() == 5; }));
  ASSERT_TRUE(
      eventually([&] { return h.backend_->pending_for_test("orders", "orders-app") == 0; }));
  EXPECT_EQ(h.call("GET", "/v1.0/healthz").status, 204);
}

TEST(sidecar, api_token_is_required_except_on_healthz) {
  harness h(orders_subscription, [](sidecar_options& o) { o.api_token = "s3cret"; });
  ASSERT_TRUE(h.wait_subscribed());
  auto denied = h.call("POST", "/v1.0/publish/pubsub/orders", "x");
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(error_code_of(denied), "ERR_UNAUTHENTICATED");
  EXPECT_EQ(h.call("GET", "/v1.0/metadata", "", {{"dapr-api-token", "wrong"}}).status, 401);
  EXPECT_EQ(h.call("GET", "/v1.0/healthz").status, 204);
  EXPECT_EQ(h.call("GET", "/v1.0/healthz/outbound").status, 204);
  EXPECT_EQ(
      h.call("POST", "/v1.0/publish/pubsub/orders", "x", {{"dapr-api-token", "s3cret"}}).status,
      204);
}

TEST(sidecar, app_api_token_is_sent_to_the_app) {
  harness h(orders_subscription, [](sidecar_options& o) { o.app_api_token = "app-token"; });
  ASSERT_TRUE(h.wait_subscribed());
  ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", "x").status, 204);
  ASSERT_TRUE(eventually([&] { return h.received_count() == 1; }));
  EXPECT_EQ(h.received()[0].headers.get("dapr-api-token").value_or(""), "app-token");
}

TEST(sidecar, malformed_requests_get_dapr_errors) {
  harness h(orders_subscription);
  auto ce = h.call("POST", "/v1.0/publish/pubsub/orders", "nope",
                   {{"content-type", "application/cloudevents+json"}});
  EXPECT_EQ(ce.status, 400);
  EXPECT_EQ(error_code_of(ce), "ERR_PUBSUB_CLOUD_EVENTS_SER");
  auto bulk = h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders", "{",
                     {{"content-type", "application/json"}});
  EXPECT_EQ(bulk.status, 400);
  EXPECT_EQ(error_code_of(bulk), "ERR_PUBSUB_EVENTS_SER");
  auto bulk_huge =
      h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders",
             R"([{"entryId":"1","event":{"n":1e400},"contentType":"application/json"}])",
             {{"content-type", "application/json"}});
  EXPECT_EQ(bulk_huge.status, 400);
  EXPECT_EQ(error_code_of(bulk_huge), "ERR_PUBSUB_EVENTS_SER");
  auto unknown = h.call("POST", "/v1.0/publish/nope/orders", "x");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code_of(unknown), "ERR_PUBSUB_NOT_FOUND");
  auto when = h.call("POST", "/v1.0/publish/pubsub/orders?metadata.deliverAt=someday", "x");
  EXPECT_EQ(when.status, 400);
  EXPECT_EQ(error_code_of(when), "ERR_PUBSUB_REQUEST_METADATA");
  EXPECT_NE(when.body.find("metadata.deliverAt='someday'"), std::string::npos);
  auto bad_id = h.call("DELETE", "/v1.0-alpha1/outrider/scheduled/pubsub/not-an-id");
  EXPECT_EQ(bad_id.status, 400);
}

TEST(sidecar, publish_answers_503_with_retry_after_when_the_backend_is_unavailable) {
  harness h(orders_subscription);
  h.backend_->set_publish_filter_for_test([](const backends::message& m) {
    return m.body.find("down") != std::string::npos
               ? status(error(errc::unavailable, "not connected"))
               : status(error(errc::message_too_large, "too large"));
  });
  auto down = h.call("POST", "/v1.0/publish/pubsub/orders", R"({"down":true})");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.headers.get("Retry-After").value_or(""), "1");
  EXPECT_EQ(json::parse(down.body).at("errorCode"), "ERR_PUBSUB_PUBLISH_MESSAGE");
  auto refused = h.call("POST", "/v1.0/publish/pubsub/orders", R"({"big":true})");
  EXPECT_EQ(refused.status, 500);
  EXPECT_FALSE(refused.headers.get("Retry-After").has_value());
  // Bulk: 503 + Retry-After only when every entry failed for want of the backend.
  auto bulk_down =
      h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders",
             R"([{"entryId":"e1","event":"down 1"},{"entryId":"e2","event":"down 2"}])");
  EXPECT_EQ(bulk_down.status, 503);
  EXPECT_EQ(bulk_down.headers.get("Retry-After").value_or(""), "1");
  EXPECT_EQ(json::parse(bulk_down.body).at("failedEntries").as_array().size(), 2u);
  auto bulk_mixed = h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders",
                           R"([{"entryId":"e1","event":"down"},{"entryId":"e2","event":"big"}])");
  EXPECT_EQ(bulk_mixed.status, 500);
  EXPECT_FALSE(bulk_mixed.headers.get("Retry-After").has_value());
}

// Each publish is counted once by outcome, per pubsub (the success series is resolved once
// and cached since session 9; it still appears only once a publish succeeded), and
// its latency observed.
TEST(sidecar, publish_outcomes_are_counted_per_pubsub) {
  harness h(orders_subscription);
  h.backend_->set_publish_filter_for_test([](const backends::message& m) {
    return m.body.find("down") != std::string::npos
               ? status(error(errc::unavailable, "not connected"))
               : ok_status();
  });
  EXPECT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", R"({"down":true})").status, 503);
  EXPECT_TRUE(
      has_metric(h, R"(outrider_sidecar_publish_total{pubsub="pubsub",outcome="error"} 1)"));
  EXPECT_FALSE(has_metric(h, R"(outcome="success")"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", R"({"n":1})").status, 204);
  }
  EXPECT_TRUE(
      has_metric(h, R"(outrider_sidecar_publish_total{pubsub="pubsub",outcome="success"} 3)"));
  EXPECT_TRUE(
      has_metric(h, R"(outrider_sidecar_publish_total{pubsub="pubsub",outcome="error"} 1)"));
  EXPECT_TRUE(has_metric(h, "outrider_sidecar_publish_duration_seconds_count 3"));
  EXPECT_TRUE(has_metric(h, "outrider_sidecar_publishes_in_flight 0"));
}

TEST(sidecar, bulk_publish_reports_per_entry_failures) {
  harness h(orders_subscription);
  h.backend_->set_publish_filter_for_test([](const backends::message& m) {
    return m.body.find("refuse-me") != std::string::npos
               ? status(error(errc::message_too_large, "too large"))
               : ok_status();
  });
  auto ok = h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders",
                   R"([{"entryId":"e1","event":"hello","contentType":"text/plain"},
                       {"entryId":"e2","event":{"a":1},"contentType":"application/json"}])");
  EXPECT_EQ(ok.status, 204);
  auto ids = json::parse(ok.headers.get("outrider-message-ids").value_or("{}")).as_object();
  EXPECT_EQ(ids.size(), 2u);
  auto partial = h.call("POST", "/v1.0-alpha1/publish/bulk/pubsub/orders",
                        R"([{"entryId":"e1","event":"fine"},
                            {"entryId":"e2","event":"refuse-me"}])");
  ASSERT_EQ(partial.status, 500);
  auto body = json::parse(partial.body).as_object();
  EXPECT_EQ(body["errorCode"], "ERR_PUBSUB_PUBLISH_MESSAGE");
  ASSERT_EQ(body["failedEntries"].as_array().size(), 1u);
  auto failed = body["failedEntries"].as_array()[0].as_object();
  EXPECT_EQ(failed["entryId"], "e2");
  EXPECT_NE(std::string(failed["error"].as_string()).find("ERR_MESSAGE_TOO_LARGE"),
            std::string::npos);
  EXPECT_TRUE(body["messageIds"].as_object().contains("e1"));
  auto stored = h.backend_->published_for_test("orders");
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(json::parse(stored[1].body).as_object()["data"].as_object()["a"], 1);
}

TEST(sidecar, delayed_publish_can_be_cancelled_and_fires_when_due) {
  harness h(orders_subscription);
  ASSERT_TRUE(h.wait_subscribed());
  auto first = h.call("POST", "/v1.0/publish/pubsub/orders?metadata.deliverAfter=1h", "cancel me");
  auto second = h.call("POST",
                       "/v1.0/publish/pubsub/orders?metadata.ScheduledEnqueueTimeUtc=" +
                           std::string("2099-01-01T00:00:00Z"),
                       "far");
  auto third = h.call("POST", "/v1.0/publish/pubsub/orders?metadata.deliverAfter=1h", "keep me");
  ASSERT_EQ(first.status, 204);
  ASSERT_EQ(second.status, 204);
  EXPECT_EQ(h.backend_->scheduled_for_test(), 3u);
  const std::string id(first.headers.get("outrider-message-id").value_or(""));
  EXPECT_EQ(h.call("DELETE", "/v1.0-alpha1/outrider/scheduled/pubsub/" + id).status, 204);
  auto again = h.call("DELETE", "/v1.0-alpha1/outrider/scheduled/pubsub/" + id);
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(error_code_of(again), "ERR_MESSAGE_NOT_FOUND");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(h.received_count(), 0u);
  h.backend_->advance_for_test(1h);
  ASSERT_TRUE(eventually([&] { return h.received_count() == 1; }));
  EXPECT_EQ(json::parse(h.received()[0].body).as_object()["data"], "keep me");
  EXPECT_EQ(h.backend_->scheduled_for_test(), 1u);  // the 2099 one
  (void)third;
}

TEST(sidecar, metadata_and_health_endpoints) {
  harness h(orders_subscription);
  ASSERT_TRUE(h.wait_subscribed());
  EXPECT_EQ(h.call("GET", "/v1.0/healthz").status, 204);
  auto md = h.call("GET", "/v1.0/metadata");
  ASSERT_EQ(md.status, 200);
  auto doc = json::parse(md.body).as_object();
  EXPECT_EQ(doc["id"], "orders-app");
  EXPECT_EQ(doc["components"].as_array()[0].as_object()["name"], "pubsub");
  auto sub = doc["subscriptions"].as_array()[0].as_object();
  EXPECT_EQ(sub["topic"], "orders");
  EXPECT_EQ(sub["type"], "PROGRAMMATIC");
  h.backend_->set_healthy_for_test(false);
  EXPECT_EQ(h.call("GET", "/v1.0/healthz/outbound").status, 500);
  EXPECT_EQ(error_code_of(h.call("GET", "/v1.0/healthz")), "ERR_HEALTH_NOT_READY");
}

TEST(sidecar, stop_releases_waiting_deliveries_without_penalty) {
  harness h(orders_subscription, [](sidecar_options& o) { o.max_in_flight = 1; });
  ASSERT_TRUE(h.wait_subscribed());
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  h.behave([opened](const http::request&) {
    opened.wait();
    return http::response::no_content();
  });
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(h.call("POST", "/v1.0/publish/pubsub/orders", std::to_string(i)).status, 204);
  }
  ASSERT_TRUE(eventually([&] { return h.received_count() == 1; }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    gate.set_value();
  });
  h.sidecar_->stop();
  releaser.join();
  // The one in flight finished (acked); the rest are back in the backend, unpenalised.
  EXPECT_EQ(h.backend_->pending_for_test("orders", "orders-app"), 2u);
  EXPECT_EQ(h.backend_->leased_for_test(), 0u);
}

// With a delivery runtime, deliveries call the app from there: a message
// reaches the app and is acked while the sidecar's I/O thread (context 0,
// where the app calls run without one) is blocked.
TEST(sidecar, with_a_delivery_runtime_deliveries_do_not_wait_for_the_io_thread) {
  io::runtime deliveries(1);
  deliveries.start();
  {
    harness h(orders_subscription, nullptr, &deliveries);
    ASSERT_TRUE(h.wait_subscribed());
    std::promise<void> gate;
    auto opened = gate.get_future().share();
    std::promise<void> blocked;
    h.rt_.post(0, [&blocked, opened] {
      blocked.set_value();
      opened.wait();
    });
    blocked.get_future().wait();
    status published = error(errc::internal, "no answer");
    h.backend_->publish({backends::message{"orders", {}, {}, R"({"order":7})", {}}},
                        [&](result<std::vector<backends::publish_outcome>> r) {
                          published = r ? r->at(0).outcome : status(r.error());
                        });
    const bool delivered = eventually([&] { return h.received_count() == 1; });
    const bool acked = eventually([&] {
      return h.backend_->pending_for_test("orders", "orders-app") == 0 &&
             h.backend_->leased_for_test() == 0;
    });
    gate.set_value();
    EXPECT_TRUE(published.ok());
    EXPECT_TRUE(delivered);
    EXPECT_TRUE(acked);
    ASSERT_EQ(h.received_count(), 1u);
    EXPECT_EQ(h.received()[0].target, "/orders");
  }
  deliveries.stop();
}

}  // namespace
}  // namespace outrider::sidecar
