#include "ambassador/policy.h"

#include <gtest/gtest.h>

namespace outrider::ambassador {
namespace {

using namespace std::chrono_literals;

const char* const resiliency_yaml = R"(
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: policies
spec:
  policies:
    timeouts:
      general: 5s
    retries:
      important:
        policy: exponential
        initialInterval: 100ms
        maxInterval: 2s
        multiplier: 2
        randomizationFactor: 0
        maxRetries: 3
        matching:
          httpStatusCodes: 429,500-599
      fixed:
        policy: constant
        duration: 1s
        maxRetries: -1
        retryNonIdempotent: true
    circuitBreakers:
      cb:
        maxRequests: 2
        interval: 10s
        timeout: 30s
        trip: consecutiveFailures >= 3
    retryBudget:
      budgetPercent: 50
      minRetryConcurrency: 1
  targets:
    apps:
      orders:
        timeout: general
        retry: important
        circuitBreaker: cb
    endpoints:
      api.example.com:
        timeout: 2s
        retry: fixed
    components:
      payments:
        outbound:
          retry: important
)";

TEST(policy, parses_dapr_resiliency) {
  auto doc = config::parse_yaml(resiliency_yaml, "r.yaml");
  ASSERT_TRUE(doc) << doc.error().message;
  auto r = parse_resiliency(*doc);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->apps.count("orders"), 1u);
  const auto& orders = r->apps.at("orders");
  EXPECT_EQ(orders.timeout, nanoseconds(5s));
  ASSERT_TRUE(orders.retry);
  EXPECT_EQ(orders.retry->type, retry_policy::kind::exponential);
  EXPECT_EQ(orders.retry->max_retries, 3);
  EXPECT_TRUE(orders.retry->retries_status(429));
  EXPECT_TRUE(orders.retry->retries_status(503));
  EXPECT_FALSE(orders.retry->retries_status(404));
  ASSERT_TRUE(orders.breaker);
  EXPECT_EQ(orders.breaker->max_requests, 2u);
  EXPECT_EQ(orders.breaker->timeout, nanoseconds(30s));
  EXPECT_FALSE(orders.breaker->trip.tripped(2, 2));
  EXPECT_TRUE(orders.breaker->trip.tripped(3, 3));
  EXPECT_EQ(r->endpoints.at("api.example.com").timeout, nanoseconds(2s));
  EXPECT_TRUE(r->endpoints.at("api.example.com").retry->retry_non_idempotent);
  EXPECT_TRUE(r->components.at("payments").retry);
  EXPECT_DOUBLE_EQ(r->budget.budget_percent, 50);
  EXPECT_EQ(r->budget.min_retry_concurrency, 1u);
}

TEST(policy, exponential_backoff_grows_capped_and_jittered) {
  retry_policy p;
  p.type = retry_policy::kind::exponential;
  p.initial_interval = 100ms;
  p.max_interval = 1s;
  p.multiplier = 2;
  p.randomization_factor = 0;
  EXPECT_EQ(p.backoff(1, 0.3), nanoseconds(100ms));
  EXPECT_EQ(p.backoff(2, 0.3), nanoseconds(200ms));
  EXPECT_EQ(p.backoff(3, 0.3), nanoseconds(400ms));
  EXPECT_EQ(p.backoff(10, 0.3), nanoseconds(1s));
  p.randomization_factor = 0.5;
  EXPECT_EQ(p.backoff(1, 0.0), nanoseconds(50ms));
  EXPECT_EQ(p.backoff(1, 0.5), nanoseconds(100ms));
  EXPECT_GT(p.backoff(1, 0.999), nanoseconds(149ms));
  p.type = retry_policy::kind::constant;
  p.duration = 250ms;
  EXPECT_EQ(p.backoff(7, 0.9), nanoseconds(250ms));
}

TEST(policy, default_retry_statuses_are_5xx_but_not_501_505) {
  retry_policy p;
  EXPECT_TRUE(p.retries_status(500));
  EXPECT_TRUE(p.retries_status(503));
  EXPECT_FALSE(p.retries_status(501));
  EXPECT_FALSE(p.retries_status(429));
  EXPECT_FALSE(p.retries_status(200));
}

TEST(policy, errors_name_the_key) {
  auto doc = config::parse_yaml(R"(
kind: Resiliency
spec:
  policies:
    retries:
      r: {policy: linear}
)",
                                "bad.yaml");
  ASSERT_TRUE(doc);
  auto r = parse_resiliency(*doc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("bad.yaml:6"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("constant"), std::string::npos);

  doc = config::parse_yaml(
      "kind: Resiliency\nspec:\n  targets:\n    apps:\n      a: {retry: nope}\n");
  ASSERT_TRUE(doc);
  r = parse_resiliency(*doc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no retry policy named 'nope'"), std::string::npos);

  doc = config::parse_yaml(
      "kind: Resiliency\nspec:\n  policies:\n    circuitBreakers:\n      c: {trip: requests > "
      "3}\n");
  ASSERT_TRUE(doc);
  EXPECT_FALSE(parse_resiliency(*doc));
}

TEST(policy, http_binding_and_endpoint_resources) {
  auto doc = config::parse_yaml(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: payments
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: https://pay.example.com/api
  - name: header.X-Client
    value: outrider
  - name: securityToken
    value: secret
  - name: MTLSRootCA
    value: /etc/ca.pem
)");
  ASSERT_TRUE(doc);
  resources res;
  ASSERT_TRUE(add_resource(*doc, res));
  ASSERT_EQ(res.bindings.size(), 1u);
  const auto& b = res.bindings[0];
  EXPECT_EQ(b.name, "payments");
  EXPECT_EQ(b.url, "https://pay.example.com/api");
  EXPECT_EQ(b.ca_file, "/etc/ca.pem");
  ASSERT_EQ(b.headers.size(), 2u);
  EXPECT_EQ(b.headers[0].name, "X-Client");
  EXPECT_EQ(b.headers[1].name, "Authorization");

  doc = config::parse_yaml(R"(
kind: HTTPEndpoint
metadata: {name: github}
spec:
  baseUrl: http://127.0.0.1:9/
  headers:
  - {name: Accept, value: application/json}
)");
  ASSERT_TRUE(doc);
  ASSERT_TRUE(add_resource(*doc, res));
  ASSERT_EQ(res.endpoints.size(), 1u);
  EXPECT_EQ(res.endpoints[0].headers[0].value, "application/json");

  std::string skipped;
  doc = config::parse_yaml("kind: Component\nmetadata: {name: s}\nspec: {type: state.redis}\n");
  ASSERT_TRUE(doc);
  ASSERT_TRUE(add_resource(*doc, res, &skipped));
  EXPECT_NE(skipped.find("state.redis"), std::string::npos);

  doc = config::parse_yaml(
      "kind: Component\nmetadata: {name: b}\nspec:\n  type: bindings.http\n  metadata: []\n");
  ASSERT_TRUE(doc);
  EXPECT_FALSE(add_resource(*doc, res));
}

}  // namespace
}  // namespace outrider::ambassador
