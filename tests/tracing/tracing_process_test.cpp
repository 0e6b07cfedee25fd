// Whole-process tracing test: a real `outrider collector` receives the spans,
// a real `outrider broker` carries a delayed message between two sidecars.
//
//   app A (tests/tracing/app_a.py: its own span, exported to sidecar A's OTLP port)
//     -> sidecar A: SERVER, PRODUCER (deliverAfter=2s)   -- OTLP/HTTP protobuf -->  collector
//     -> broker (delay)
//     -> sidecar B: CONSUMER, CLIENT -> app B (tests/sidecar/app.py)  -- Zipkin v2 JSON -->
//     collector
//
// The collector's native API must show one trace with the right parents,
// kinds and delay attributes, and app B must receive a traceparent whose
// parent is sidecar B's CLIENT span.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <gtest/gtest.h>
#include <map>
#include <regex>
#include <thread>

#include "testing/http_call.h"
#include "testing/process.h"

namespace outrider {
namespace {

using namespace std::chrono_literals;
using testing::http_call;
using testing::http_reply;
using testing::outrider_binary;
using testing::process;
using testing::raw_http;
namespace json = boost::json;

constexpr auto start_timeout = 20s;
const std::string source_dir = OUTRIDER_SOURCE_DIR;

// Runs a shell command; returns its exit code.
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return cond();
}

std::uint16_t listening_port(const process& p, const std::string& pattern) {
  std::smatch m;
  const std::string out = p.output();
  if (!std::regex_search(out, m, std::regex(pattern))) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1].str()));
}

// The value of attribute `key` in a native span (string form), "" if absent.
std::string attribute(const json::object& span, std::string_view key) {
  for (const auto& kv : span.at("attributes").as_array()) {
    const auto& o = kv.as_object();
    if (o.at("key").as_string() != key) continue;
    const auto& v = o.at("value").as_object();
    if (const auto* s = v.if_contains("stringValue")) return std::string(s->as_string());
    if (const auto* i = v.if_contains("intValue")) {
      return i->is_string() ? std::string(i->as_string()) : std::to_string(i->to_number<long>());
    }
    return json::serialize(v);
  }
  return "";
}

class tracing_process : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_port_ = testing::free_port();
    broker_ = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "broker", "--listen",
                                 "127.0.0.1:" + std::to_string(broker_port_), "--data-dir",
                                 data_.path() + "/broker", "--metrics-listen", ""},
        testing::process_options{{}, "", "broker"});
    ASSERT_TRUE(broker_->wait_for_output("outrider broker listening on", start_timeout))
        << broker_->output();
    collector_ = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "collector", "--data-dir",
                                 data_.path() + "/collector", "--otlp-listen",
                                 "127.0.0.1:" + std::to_string(otlp_port_), "--zipkin-listen",
                                 "127.0.0.1:" + std::to_string(zipkin_port_)},
        testing::process_options{{}, "", "collector"});
    ASSERT_TRUE(collector_->wait_for_output("outrider collector listening on", start_timeout))
        << collector_->output();
  }

  std::unique_ptr<process> sidecar(const std::string& app_id, std::uint16_t app_port,
                                   std::vector<std::string> extra) {
    std::vector<std::string> argv{outrider_binary(),  "sidecar",
                                  "--app-id",         app_id,
                                  "--app-port",       std::to_string(app_port),
                                  "--dapr-http-port", "0",
                                  "--metrics-port",   "0",
                                  "--broker",         "127.0.0.1:" + std::to_string(broker_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<process>(argv, testing::process_options{{}, "", app_id});
    EXPECT_TRUE(p->wait_for_output("outrider sidecar listening on", start_timeout)) << p->output();
    return p;
  }

  // The collector's native view of a trace once it holds at least `n` spans.
  json::array wait_trace(const std::string& trace_id, std::size_t n) {
    json::array spans;
    eventually(
        [&] {
          auto r = http_call(zipkin_port_, "GET", "/api/outrider/v1/trace/" + trace_id);
          if (r.status != 200) return false;
          spans = json::parse(r.body).at("spans").as_array();
          return spans.size() >= n;
        },
        30s);
    return spans;
  }

  testing::temp_dir data_{"outrider-tracing-it"};
  std::uint16_t broker_port_ = 0;
  std::uint16_t otlp_port_ = testing::free_port();
  std::uint16_t zipkin_port_ = testing::free_port();
  std::unique_ptr<process> broker_;
  std::unique_ptr<process> collector_;
};

TEST_F(tracing_process, one_trace_across_a_delayed_hop_with_parents_kinds_and_delay) {
  // App B and its sidecar (exporting Zipkin v2 JSON).
  const std::uint16_t app_b_port = testing::free_port();
  process app_b({"python3", source_dir + "/tests/sidecar/app.py", std::to_string(app_b_port),
                 R"([{"pubsubname":"pubsub","topic":"orders","route":"/orders"}])"},
                {{}, "", "app-b"});
  ASSERT_TRUE(app_b.wait_for_output("test app listening", start_timeout)) << app_b.output();
  auto sidecar_b = sidecar(
      "app-b", app_b_port,
      {"--trace-endpoint", "http://127.0.0.1:" + std::to_string(zipkin_port_) + "/api/v2/spans"});
  const auto b_port = listening_port(*sidecar_b, "listening on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_TRUE(
      eventually([&] { return http_call(b_port, "GET", "/v1.0/healthz").status == 204; }, 20s));

  // Sidecar A (publish only; OTLP/HTTP protobuf; the app's OTLP receiver).
  const std::uint16_t app_otlp = testing::free_port();
  auto sidecar_a =
      sidecar("app-a", 0,
              {"--trace-endpoint", "http://127.0.0.1:" + std::to_string(otlp_port_) + "/v1/traces",
               "--trace-sampling", "1.0", "--app-otlp-port", std::to_string(app_otlp)});
  const auto a_port = listening_port(*sidecar_a, "listening on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_NE(a_port, 0);
  EXPECT_NE(sidecar_a->output().find("app OTLP on"), std::string::npos);

  // App A: its span, a delayed publish, its span exported through sidecar A.
  process app_a({"python3", source_dir + "/tests/tracing/app_a.py", std::to_string(a_port),
                 std::to_string(app_otlp), "orders", "2s"},
                {{}, "", "app-a"});
  ASSERT_TRUE(app_a.wait_for_output("trace=", start_timeout)) << app_a.output();
  std::smatch m;
  const std::string out = app_a.output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("trace=([0-9a-f]{32}) span=([0-9a-f]{16})")));
  const std::string trace_id = m[1].str();
  const std::string app_a_span = m[2].str();

  // App B gets the message (after the delay) with a traceparent of this trace.
  json::array deliveries;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http_call(app_b_port, "GET", "/deliveries");
        if (r.status != 200) return false;
        deliveries = json::parse(r.body).as_array();
        return !deliveries.empty();
      },
      30s));
  const auto& headers = deliveries.at(0).at("headers").as_object();
  const std::string received = std::string(headers.at("traceparent").as_string());
  ASSERT_EQ(received.size(), 55U) << received;
  EXPECT_EQ(received.substr(3, 32), trace_id);
  EXPECT_EQ(std::string(headers.at("tracestate").as_string()), "appa=1");
  const std::string app_b_parent = received.substr(36, 16);

  // The collector holds one trace: app A's span, sidecar A's SERVER and
  // PRODUCER, sidecar B's CONSUMER and CLIENT.
  auto spans = wait_trace(trace_id, 5);
  ASSERT_EQ(spans.size(), 5U) << json::serialize(spans) << "\n"
                              << sidecar_a->output() << sidecar_b->output();
  std::map<std::string, json::object> by_kind;
  for (const auto& s : spans) {
    const auto& o = s.as_object();
    const std::string kind(o.at("kind").as_string());
    const std::string service(o.at("serviceName").as_string());
    by_kind[kind + "/" + service] = o;
  }
  auto id = [](const json::object& o) { return std::string(o.at("spanId").as_string()); };
  auto parent = [](const json::object& o) {
    const auto* p = o.if_contains("parentSpanId");
    return p != nullptr ? std::string(p->as_string()) : std::string();
  };
  // Two SERVER spans of service app-a: app A's own "checkout" and sidecar A's.
  json::object app_span;
  json::object server;
  for (const auto& s : spans) {
    const auto& o = s.as_object();
    if (o.at("kind").as_string() != "SERVER") continue;
    if (id(o) == app_a_span) {
      app_span = o;
    } else {
      server = o;
    }
  }
  ASSERT_FALSE(app_span.empty()) << json::serialize(spans);
  ASSERT_FALSE(server.empty()) << json::serialize(spans);
  ASSERT_TRUE(by_kind.count("PRODUCER/app-a")) << json::serialize(spans);
  ASSERT_TRUE(by_kind.count("CONSUMER/app-b")) << json::serialize(spans);
  ASSERT_TRUE(by_kind.count("CLIENT/app-b")) << json::serialize(spans);
  const auto& producer = by_kind["PRODUCER/app-a"];
  const auto& consumer = by_kind["CONSUMER/app-b"];
  const auto& client = by_kind["CLIENT/app-b"];

  EXPECT_EQ(app_span.at("name").as_string(), "checkout");
  EXPECT_EQ(parent(server), app_a_span);
  EXPECT_EQ(parent(producer), id(server));
  EXPECT_EQ(parent(consumer), id(producer));
  EXPECT_EQ(parent(client), id(consumer));
  EXPECT_EQ(app_b_parent, id(client));

  EXPECT_EQ(server.at("name").as_string(), "POST /v1.0/publish/{pubsub}/{topic}");
  EXPECT_EQ(attribute(server, "http.request.method"), "POST");
  EXPECT_EQ(attribute(server, "http.response.status_code"), "204");
  EXPECT_EQ(attribute(server, "url.path"), "/v1.0/publish/pubsub/orders");
  EXPECT_EQ(producer.at("name").as_string(), "publish orders");
  EXPECT_EQ(attribute(producer, "messaging.system"), "outrider");
  EXPECT_EQ(attribute(producer, "messaging.destination.name"), "orders");
  EXPECT_EQ(attribute(producer, "messaging.operation.type"), "send");
  const std::string message_id = attribute(producer, "messaging.message.id");
  EXPECT_FALSE(message_id.empty());
  EXPECT_EQ(consumer.at("name").as_string(), "process orders");
  EXPECT_EQ(attribute(consumer, "messaging.message.id"), message_id);
  EXPECT_EQ(attribute(consumer, "messaging.operation.type"), "process");
  EXPECT_EQ(attribute(consumer, "outrider.message.attempt"), "1");
  const std::string scheduled = attribute(consumer, "outrider.message.scheduled_time_ms");
  const std::string delivered = attribute(consumer, "outrider.message.delivered_time_ms");
  const std::string lag = attribute(consumer, "outrider.message.delivery_lag_ms");
  ASSERT_FALSE(scheduled.empty()) << json::serialize(consumer);
  ASSERT_FALSE(delivered.empty());
  ASSERT_FALSE(lag.empty());
  EXPECT_EQ(attribute(producer, "outrider.message.scheduled_time_ms"), scheduled);
  EXPECT_GE(std::stoll(delivered), std::stoll(scheduled));  // never early
  EXPECT_EQ(std::stoll(delivered) - std::stoll(scheduled), std::stoll(lag));
  EXPECT_EQ(attribute(client, "http.request.method"), "POST");
  EXPECT_EQ(attribute(client, "http.response.status_code"), "200");
  EXPECT_EQ(attribute(client, "server.port"), std::to_string(app_b_port));

  EXPECT_EQ(sidecar_a->stop(10s), 0);
  EXPECT_EQ(sidecar_b->stop(10s), 0);
}

TEST_F(tracing_process, delivery_span_links_to_the_creation_context_when_configured) {
  const std::uint16_t app_b_port = testing::free_port();
  process app_b({"python3", source_dir + "/tests/sidecar/app.py", std::to_string(app_b_port),
                 R"([{"pubsubname":"pubsub","topic":"linked","route":"/linked"}])"},
                {{}, "", "app-b"});
  ASSERT_TRUE(app_b.wait_for_output("test app listening", start_timeout)) << app_b.output();
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(otlp_port_) + "/v1/traces";
  auto sidecar_b = sidecar("linker", app_b_port,
                           {"--trace-endpoint", endpoint, "--trace-consumer-parent", "link"});
  const auto b_port = listening_port(*sidecar_b, "listening on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_TRUE(
      eventually([&] { return http_call(b_port, "GET", "/v1.0/healthz").status == 204; }, 20s));
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::string req =
      "POST /v1.0/publish/pubsub/linked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "traceparent: 00-" +
      trace_id +
      "-00f067aa0ba902b7-01\r\ncontent-type: application/json\r\n"
      "content-length: 2\r\n\r\n{}";
  // The publish goes through sidecar B itself (it publishes and consumes).
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(b_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    char buf[512];
    EXPECT_GT(::recv(fd, buf, sizeof buf, 0), 0);
    ::close(fd);
  }
  auto spans = wait_trace(trace_id, 2);  // SERVER and PRODUCER stay in the caller's trace
  ASSERT_EQ(spans.size(), 2U) << json::serialize(spans);
  std::string producer_id;
  for (const auto& s : spans) {
    if (s.at("kind").as_string() == "PRODUCER") producer_id = s.at("spanId").as_string();
  }
  ASSERT_FALSE(producer_id.empty());
  // The CONSUMER span starts a trace of its own, linked to the PRODUCER span.
  json::array deliveries;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http_call(app_b_port, "GET", "/deliveries");
        deliveries = r.status == 200 ? json::parse(r.body).as_array() : json::array{};
        return !deliveries.empty();
      },
      30s));
  const std::string tp(deliveries.at(0).at("headers").at("traceparent").as_string());
  const std::string consumer_trace = tp.substr(3, 32);
  EXPECT_NE(consumer_trace, trace_id);
  auto consumer_spans = wait_trace(consumer_trace, 2);
  ASSERT_EQ(consumer_spans.size(), 2U) << json::serialize(consumer_spans);
  bool linked = false;
  for (const auto& s : consumer_spans) {
    if (s.at("kind").as_string() != "CONSUMER") continue;
    EXPECT_FALSE(s.as_object().contains("parentSpanId"));
    for (const auto& l : s.at("links").as_array()) {
      linked = linked || (l.at("traceId").as_string() == trace_id &&
                          l.at("spanId").as_string() == producer_id);
    }
  }
  EXPECT_TRUE(linked) << json::serialize(consumer_spans);
}

// A redelivered message: each attempt is a CONSUMER span (with its CLIENT call) under the
// same creation context, numbered by outrider.message.attempt.
TEST_F(tracing_process, redeliveries_are_sibling_consumer_spans_with_attempt_numbers) {
  const std::uint16_t app_port = testing::free_port();
  process app({"python3", source_dir + "/tests/sidecar/app.py", std::to_string(app_port),
               R"([{"pubsubname":"pubsub","topic":"flaky","route":"/flaky/retry"}])"},
              {{}, "", "app"});
  ASSERT_TRUE(app.wait_for_output("test app listening", start_timeout)) << app.output();
  auto sc =
      sidecar("retrier", app_port,
              {"--trace-endpoint", "http://127.0.0.1:" + std::to_string(otlp_port_) + "/v1/traces",
               "--retry-max-attempts", "2", "--retry-initial-interval", "50ms",
               "--retry-max-interval", "100ms"});
  const auto port = listening_port(*sc, "listening on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_TRUE(
      eventually([&] { return http_call(port, "GET", "/v1.0/healthz").status == 204; }, 20s));
  ASSERT_EQ(http_call(port, "POST", "/v1.0/publish/pubsub/flaky", "{}").status, 204);
  json::array deliveries;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http_call(app_port, "GET", "/deliveries");
        deliveries = r.status == 200 ? json::parse(r.body).as_array() : json::array{};
        return deliveries.size() >= 2;
      },
      30s));
  const std::string tp(deliveries.at(0).at("headers").at("traceparent").as_string());
  const std::string trace_id = tp.substr(3, 32);
  // SERVER, PRODUCER, and per attempt a CONSUMER and a CLIENT span.
  auto spans = wait_trace(trace_id, 6);
  ASSERT_EQ(spans.size(), 6U) << json::serialize(spans);
  std::string producer_id;
  for (const auto& s : spans) {
    if (s.at("kind").as_string() == "PRODUCER") producer_id = s.at("spanId").as_string();
  }
  std::vector<std::string> attempts;
  for (const auto& s : spans) {
    const auto& o = s.as_object();
    if (o.at("kind").as_string() != "CONSUMER") continue;
    EXPECT_EQ(std::string(o.at("parentSpanId").as_string()), producer_id);
    EXPECT_EQ(attribute(o, "outrider.delivery.outcome"), "retry");
    attempts.push_back(attribute(o, "outrider.message.attempt"));
  }
  std::sort(attempts.begin(), attempts.end());
  EXPECT_EQ(attempts, (std::vector<std::string>{"1", "2"}));
}

// Interop: a Node.js app instrumented with the OpenTelemetry JS SDK (HTTP auto-instrumentation,
// OTLP/HTTP protobuf export to the sidecar's app OTLP port) publishes through the sidecar and
// receives the message back; its spans and the sidecar's form one trace.
// The sidecar's own calls to its app are traced too: subscription discovery
// always (at the sampling ratio), health probes when --trace-probe-sampling
// says so (off by default: each probe would be a trace of its own).
TEST_F(tracing_process, sidecar_calls_to_its_app_are_client_spans) {
  const std::uint16_t app_port = testing::free_port();
  process app({"python3", source_dir + "/tests/sidecar/app.py", std::to_string(app_port),
               R"([{"pubsubname":"pubsub","topic":"orders","route":"/orders"}])"},
              {{}, "", "app-c"});
  ASSERT_TRUE(app.wait_for_output("test app listening", start_timeout)) << app.output();
  auto sc =
      sidecar("app-c", app_port,
              {"--trace-endpoint", "http://127.0.0.1:" + std::to_string(otlp_port_) + "/v1/traces",
               "--enable-app-health-check", "true", "--app-health-probe-interval", "200ms",
               "--trace-probe-sampling", "1.0"});
  // Zipkin's view lower-cases span names.
  std::map<std::string, json::object> by_name;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http_call(zipkin_port_, "GET", "/api/v2/traces?serviceName=app-c&limit=50");
        if (r.status != 200) return false;
        const json::value traces = json::parse(r.body);
        for (const auto& trace : traces.as_array()) {
          for (const auto& s : trace.as_array()) {
            const auto& o = s.as_object();
            by_name[std::string(o.at("name").as_string())] = o;
          }
        }
        return by_name.count("get /dapr/subscribe") > 0 && by_name.count("get /healthz") > 0;
      },
      30s))
      << sc->output();
  for (const auto* name : {"get /dapr/subscribe", "get /healthz"}) {
    const auto& o = by_name[name];
    EXPECT_EQ(o.at("kind").as_string(), "CLIENT") << name;
    EXPECT_FALSE(o.contains("parentId")) << name;  // a trace of its own
    const auto& tags = o.at("tags").as_object();
    EXPECT_EQ(tags.at("http.response.status_code").as_string(), "200") << name;
    EXPECT_EQ(tags.at("server.port").as_string(), std::to_string(app_port)) << name;
  }
}

TEST_F(tracing_process, opentelemetry_js_app_shares_the_trace_with_the_sidecar) {
  if (shell("command -v npm >/dev/null && command -v node >/dev/null") != 0) {
    GTEST_SKIP() << "node/npm not installed";
  }
  const std::string dir = source_dir + "/tests/tracing/otel-js";
  // Idempotent (scripts/setup.sh does the same): the locked versions, only when missing.
  ASSERT_EQ(shell("cd '" + dir +
                  "' && { [ -d node_modules/@opentelemetry/instrumentation-http ] || "
                  "npm ci --no-audit --no-fund >/dev/null 2>&1; }"),
            0)
      << "npm ci failed in " << dir;
  const std::uint16_t app_port = testing::free_port();
  const std::uint16_t app_otlp = testing::free_port();
  auto sc =
      sidecar("node-app", app_port,
              {"--trace-endpoint", "http://127.0.0.1:" + std::to_string(otlp_port_) + "/v1/traces",
               "--app-otlp-port", std::to_string(app_otlp)});
  const auto sc_port = listening_port(*sc, "listening on 127\\.0\\.0\\.1:(\\d+)");
  ASSERT_NE(sc_port, 0);
  process node({"node", dir + "/app.js"},
               {{{"APP_PORT", std::to_string(app_port)},
                 {"DAPR_HTTP_PORT", std::to_string(sc_port)},
                 {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(app_otlp)}},
                "",
                "node-app"});
  ASSERT_TRUE(node.wait_for_output("node app listening", start_timeout)) << node.output();
  ASSERT_TRUE(
      eventually([&] { return http_call(sc_port, "GET", "/v1.0/healthz").status == 204; }, 30s))
      << sc->output();
  auto started = http_call(app_port, "POST", "/start");
  ASSERT_EQ(started.status, 200) << started.body << node.output();
  const auto doc = json::parse(started.body).as_object();
  ASSERT_EQ(doc.at("status").as_int64(), 204) << started.body;
  const std::string trace_id(doc.at("traceId").as_string());
  const std::string checkout_id(doc.at("spanId").as_string());
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http_call(app_port, "GET", "/deliveries");
        return r.status == 200 && !json::parse(r.body).as_array().empty();
      },
      30s));
  // Node: checkout, the publish CLIENT call, the SERVER span of the delivery; sidecar: SERVER,
  // PRODUCER, CONSUMER, CLIENT.
  json::array spans;
  ASSERT_TRUE(eventually(
      [&] {
        http_call(app_port, "POST", "/flush");
        spans = wait_trace(trace_id, 0);
        return spans.size() >= 7;
      },
      30s))
      << json::serialize(spans) << node.output();
  std::map<std::string, json::object> by_id;
  for (const auto& s : spans) by_id[std::string(s.at("spanId").as_string())] = s.as_object();
  auto parent_of = [&](const json::object& o) -> const json::object* {
    const auto* p = o.if_contains("parentSpanId");
    if (p == nullptr) return nullptr;
    auto it = by_id.find(std::string(p->as_string()));
    return it == by_id.end() ? nullptr : &it->second;
  };
  const json::object* sidecar_server = nullptr;
  const json::object* node_server = nullptr;
  for (const auto& [id, o] : by_id) {
    if (o.at("kind").as_string() != "SERVER") continue;
    if (o.at("name").as_string() == "POST /v1.0/publish/{pubsub}/{topic}") {
      sidecar_server = &o;
    } else {
      node_server = &o;
    }
  }
  ASSERT_NE(sidecar_server, nullptr) << json::serialize(spans);
  ASSERT_NE(node_server, nullptr) << json::serialize(spans);
  // The sidecar's SERVER span continues the Node SDK's CLIENT span, itself under "checkout".
  const auto* node_client = parent_of(*sidecar_server);
  ASSERT_NE(node_client, nullptr) << json::serialize(spans);
  EXPECT_EQ(node_client->at("kind").as_string(), "CLIENT");
  const auto* checkout = parent_of(*node_client);
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(std::string(checkout->at("spanId").as_string()), checkout_id);
  EXPECT_EQ(checkout->at("name").as_string(), "checkout");
  // The Node SDK's SERVER span for the delivery continues the sidecar's CLIENT span.
  const auto* sidecar_client = parent_of(*node_server);
  ASSERT_NE(sidecar_client, nullptr) << json::serialize(spans);
  EXPECT_EQ(sidecar_client->at("kind").as_string(), "CLIENT");
  const auto* consumer = parent_of(*sidecar_client);
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(consumer->at("kind").as_string(), "CONSUMER");
  const auto* producer = parent_of(*consumer);
  ASSERT_NE(producer, nullptr);
  EXPECT_EQ(producer->at("kind").as_string(), "PRODUCER");
  EXPECT_EQ(parent_of(*producer), sidecar_server);
}

}  // namespace
}  // namespace outrider
