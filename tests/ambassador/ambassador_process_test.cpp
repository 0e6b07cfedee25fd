// Whole-process tests of the ambassador: a fault-injecting upstream
// (tests/ambassador/fault_upstream.py), a broker, and two real sidecars:
// "frontend" (resources with policies, a binding and the forward proxy; no
// app) and "backend" (its app is the fault upstream). Invocation goes
// frontend sidecar -> backend sidecar -> upstream, so every policy outcome is
// proven over real sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
const std::string upstream_script =
    std::string(OUTRIDER_SOURCE_DIR) + "/tests/ambassador/fault_upstream.py";

std::uint16_t port_from_output(const process& p, const std::string& marker) {
  std::regex re(marker + "[^\\n]*?:([0-9]+)");
  std::smatch m;
  const std::string out = p.output();
  return std::regex_search(out, m, re) ? static_cast<std::uint16_t>(std::stoi(m[1].str())) : 0;
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());
}

class ambassador_process : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::temp_dir("outrider-ambassador-it");
    const auto broker_port = testing::free_port();
    broker_ = new process(
        {outrider_binary(), "broker", "--listen", "127.0.0.1:" + std::to_string(broker_port),
         "--data-dir", data_->path() + "/broker", "--metrics-listen", ""},
        {{}, "", "broker"});
    ASSERT_TRUE(broker_->wait_for_output("outrider broker listening on", start_timeout));
    upstream_port_ = testing::free_port();
    upstream_ = new process({"python3", upstream_script, std::to_string(upstream_port_)},
                            {{}, "", "fault_upstream"});
    ASSERT_TRUE(upstream_->wait_for_output("fault upstream listening", start_timeout));

    const std::string broker = "127.0.0.1:" + std::to_string(broker_port);
    backend_ = new process({outrider_binary(), "sidecar", "--app-id", "backend", "--app-port",
                            std::to_string(upstream_port_), "--dapr-http-port", "0",
                            "--metrics-port", "0", "--broker", broker},
                           {{}, "", "sidecar-backend"});
    ASSERT_TRUE(backend_->wait_for_output("outrider sidecar listening on", start_timeout));
    backend_port_ = port_from_output(*backend_, "outrider sidecar listening on");
    ASSERT_NE(backend_port_, 0);

    const std::string resources = data_->path() + "/resources";
    std::filesystem::create_directories(resources);
    const std::string up = "http://127.0.0.1:" + std::to_string(upstream_port_);
    write_file(resources + "/resiliency.yaml", R"(
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: test-policies
spec:
  policies:
    timeouts:
      short: 2s
    retries:
      fast:
        policy: constant
        duration: 20ms
        maxRetries: 3
      fastAll:
        policy: exponential
        initialInterval: 20ms
        maxRetries: 3
        retryNonIdempotent: true
    circuitBreakers:
      cb:
        maxRequests: 1
        timeout: 1s
        trip: consecutiveFailures >= 3
  targets:
    apps:
      backend:
        timeout: short
        retry: fast
    endpoints:
      "127.0.0.1":
        timeout: short
        retry: fast
    components:
      upstream:
        outbound:
          timeout: short
          retry: fastAll
      guarded:
        outbound:
          circuitBreaker: cb
)");
    write_file(resources + "/bindings.yaml",
               "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
               "metadata:\n  name: upstream\nspec:\n"
               "  type: bindings.http\n  version: v1\n"
               "  metadata:\n  - name: url\n    value: " +
                   up +
                   "\n  - name: header.X-Default\n"
                   "    value: from-binding\n"
                   "---\napiVersion: dapr.io/v1alpha1\n"
                   "kind: Component\nmetadata:\n  name: guarded\n"
                   "spec:\n  type: bindings.http\n  metadata:\n"
                   "  - name: url\n    value: " +
                   up + "\n");
    write_file(resources + "/endpoints.yaml",
               "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\n"
               "metadata:\n  name: ext\nspec:\n  baseUrl: " +
                   up +
                   "\n---\napiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\n"
                   "metadata:\n  name: extpath\nspec:\n  baseUrl: " +
                   up + "/echo/base/\n");
    resolve_file_ = new std::string(data_->path() + "/apps.yaml");
    write_file(*resolve_file_,
               "apps:\n  backend: \"127.0.0.1:" + std::to_string(backend_port_) + "\"\n");
    proxy_port_ = testing::free_port();
    frontend_ =
        new process({outrider_binary(), "sidecar", "--app-id", "frontend", "--dapr-http-port", "0",
                     "--metrics-port", "0", "--broker", broker, "--resources-path", resources,
                     "--resolve-file", *resolve_file_, "--proxy-port", std::to_string(proxy_port_)},
                    {{}, "", "sidecar-frontend"});
    ASSERT_TRUE(frontend_->wait_for_output("outrider sidecar listening on", start_timeout))
        << frontend_->output();
    frontend_port_ = port_from_output(*frontend_, "outrider sidecar listening on");
    metrics_port_ = port_from_output(*frontend_, "metrics on http");
    ASSERT_NE(frontend_port_, 0);
  }
  static void TearDownTestSuite() {
    delete frontend_;
    delete backend_;
    delete upstream_;
    delete broker_;
    delete resolve_file_;
    delete data_;
  }

  static int upstream_count(const std::string& key) {
    return std::atoi(http_call(upstream_port_, "GET", "/_count/" + key).body.c_str());
  }

  static http_reply invoke(const std::string& method, const std::string& path,
                           const std::string& body = "",
                           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return http_call(frontend_port_, method, "/v1.0/invoke/backend/method" + path, body, headers);
  }

  static inline testing::temp_dir* data_ = nullptr;
  static inline process* broker_ = nullptr;
  static inline process* upstream_ = nullptr;
  static inline process* backend_ = nullptr;
  static inline process* frontend_ = nullptr;
  static inline std::string* resolve_file_ = nullptr;
  static inline std::uint16_t upstream_port_ = 0;
  static inline std::uint16_t backend_port_ = 0;
  static inline std::uint16_t frontend_port_ = 0;
  static inline std::uint16_t proxy_port_ = 0;
  static inline std::uint16_t metrics_port_ = 0;
};

TEST_F(ambassador_process, invocation_goes_sidecar_to_sidecar_to_app) {
  const std::string trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto r = invoke("PUT", "/echo/items/7?x=1%202", R"({"n":1})",
                  {{"content-type", "application/json"},
                   {"traceparent", trace},
                   {"tracestate", "a=b"},
                   {"x-custom", "kept"},
                   {"Connection", "close, x-hop"},
                   {"x-hop", "dropped"}});
  ASSERT_EQ(r.status, 200) << r.head << r.body;
  EXPECT_EQ(r.header("X-Upstream"), "echo");  // response headers pass through
  auto doc = json::parse(r.body).as_object();
  EXPECT_EQ(doc.at("method").as_string(), "PUT");
  EXPECT_EQ(doc.at("path").as_string(), "/echo/items/7?x=1%202");
  EXPECT_EQ(doc.at("body").as_string(), R"({"n":1})");
  const auto& h = doc.at("headers").as_object();
  EXPECT_EQ(h.at("traceparent").as_string(), trace);
  EXPECT_EQ(h.at("tracestate").as_string(), "a=b");
  EXPECT_EQ(h.at("x-custom").as_string(), "kept");
  EXPECT_EQ(h.at("dapr-caller-app-id").as_string(), "frontend");
  EXPECT_FALSE(h.contains("x-hop"));
  EXPECT_FALSE(h.contains("outrider-invoke-from"));
}

TEST_F(ambassador_process, dapr_app_id_header_and_upstream_statuses_pass_through) {
  auto r = http_call(frontend_port_, "GET", "/echo/by-header", "", {{"dapr-app-id", "backend"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("/echo/by-header"), std::string::npos);
  r = invoke("DELETE", "/status/404");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "status 404");
}

TEST_F(ambassador_process, self_invocation_goes_straight_to_the_app) {
  auto r = http_call(backend_port_, "GET", "/v1.0/invoke/backend/method/echo/self");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("/echo/self"), std::string::npos);
}

TEST_F(ambassador_process, transient_503s_and_dropped_connections_are_retried) {
  auto r = invoke("GET", "/flaky/a/2");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "recovered");
  EXPECT_EQ(upstream_count("flaky/a/"), 3);
  r = invoke("GET", "/drop/b/2");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_count("drop/b/"), 3);
}

TEST_F(ambassador_process, retries_stop_at_max_retries_with_the_last_answer) {
  auto r = invoke("GET", "/flaky/c/100");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "try again");
  EXPECT_EQ(upstream_count("flaky/c/"), 4);  // 1 + maxRetries 3
}

TEST_F(ambassador_process, non_idempotent_requests_are_retried_only_when_the_policy_allows) {
  auto r = invoke("POST", "/flaky/d/1", "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(upstream_count("flaky/d/"), 1);
  // The binding's policy opts in (retryNonIdempotent: true).
  r = http_call(frontend_port_, "POST", "/v1.0/bindings/upstream",
                R"({"operation":"post","metadata":{"path":"/flaky/e/1"}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_count("flaky/e/"), 2);
}

TEST_F(ambassador_process, a_stalled_upstream_gets_504_within_the_overall_timeout) {
  auto r = invoke("GET", "/stall");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("ERR_TIMEOUT"), std::string::npos);
  EXPECT_EQ(r.header("content-type"), "application/json");
}

TEST_F(ambassador_process, reset_mid_body_is_retried_then_reported) {
  auto r = invoke("GET", "/reset");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("ERR_UPSTREAM"), std::string::npos);
  // 4 attempts; the callee sidecar's client may add one fresh-connection retry of a pooled one.
  EXPECT_GE(upstream_count("reset"), 4);
}

TEST_F(ambassador_process, slow_trickle_arrives_whole_or_times_out) {
  auto r = invoke("GET", "/trickle/200");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string(200, 'x'));
  r = invoke("GET", "/trickle/8000");
  EXPECT_EQ(r.status, 504) << r.body;
}

TEST_F(ambassador_process, output_binding_calls_the_http_service) {
  auto r = http_call(
      frontend_port_, "POST", "/v1.0/bindings/upstream",
      R"({"operation":"put","data":{"amount":5},"metadata":{"path":"/echo/pay","X-Req":"7"}})",
      {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("metadata.statusCode"), "200");
  auto doc = json::parse(r.body).as_object();
  EXPECT_EQ(doc.at("method").as_string(), "PUT");
  EXPECT_EQ(doc.at("path").as_string(), "/echo/pay");
  EXPECT_EQ(doc.at("body").as_string(), R"({"amount":5})");
  const auto& h = doc.at("headers").as_object();
  EXPECT_EQ(h.at("x-req").as_string(), "7");
  EXPECT_EQ(h.at("x-default").as_string(), "from-binding");
  EXPECT_TRUE(h.contains("traceparent"));

  r = http_call(frontend_port_, "POST", "/v1.0/bindings/nope", R"({"operation":"get"})");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("ERR_INVOKE_OUTPUT_BINDING"), std::string::npos);
  r = http_call(frontend_port_, "POST", "/v1.0/bindings/upstream", "not json");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ambassador_process, circuit_opens_fails_fast_then_half_opens_and_closes) {
  const std::string failing = R"({"operation":"get","metadata":{"path":"/status/500"}})";
  for (int i = 0; i < 3; ++i) {
    auto r = http_call(frontend_port_, "POST", "/v1.0/bindings/guarded", failing);
    EXPECT_EQ(r.status, 500) << r.body;
    EXPECT_NE(r.body.find("status 500"), std::string::npos);
  }
  auto fast = http_call(frontend_port_, "POST", "/v1.0/bindings/guarded", failing);
  EXPECT_EQ(fast.status, 503) << fast.body;
  EXPECT_NE(fast.body.find("ERR_CIRCUIT_OPEN"), std::string::npos);
  EXPECT_FALSE(fast.header("Retry-After").empty());
  EXPECT_EQ(upstream_count("status/500"), 3);  // the open circuit never called it
  auto metrics = http_call(metrics_port_, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("outrider_ambassador_circuit_state{target=\"component:guarded\"} 1"),
            std::string::npos);
  // After the open interval (1 s) one probe goes through; a success closes the circuit.
  const std::string healthy = R"({"operation":"get","metadata":{"path":"/echo/probe"}})";
  http_reply r;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    std::this_thread::sleep_for(100ms);
    r = http_call(frontend_port_, "POST", "/v1.0/bindings/guarded", healthy);
  } while (r.status == 503 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(r.status, 200) << r.body;
  metrics = http_call(metrics_port_, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("outrider_ambassador_circuit_state{target=\"component:guarded\"} 0"),
            std::string::npos);
}

TEST_F(ambassador_process, forward_proxy_applies_the_host_policy) {
  const std::string origin = "http://127.0.0.1:" + std::to_string(upstream_port_);
  auto r = http_call(proxy_port_, "GET", origin + "/flaky/p/1", "",
                     {{"Proxy-Connection", "keep-alive"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_count("flaky/p/"), 2);
  r = http_call(proxy_port_, "GET", origin + "/echo/proxied", "", {{"Proxy-Authorization", "x"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("proxy-authorization"), std::string::npos);  // hop-by-hop, not forwarded
  r = raw_http(
      proxy_port_,
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("binding"), std::string::npos);
  r = http_call(proxy_port_, "GET", "/not-absolute");
  EXPECT_EQ(r.status, 400);
  r = http_call(proxy_port_, "GET", "http://[::1/bad");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ambassador_process, hostile_requests_get_4xx_and_never_reach_the_upstream) {
  for (std::uint16_t port : {frontend_port_, proxy_port_}) {
    const std::string target =
        port == proxy_port_ ? "http://127.0.0.1:" + std::to_string(upstream_port_) + "/echo/smuggle"
                            : "/v1.0/invoke/backend/method/echo/smuggle";
    auto r = raw_http(
        port, "POST " + target +
                  " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\n\r\n");
    EXPECT_GE(r.status, 400);
    EXPECT_LT(r.status, 500);
    r = raw_http(port,
                 "POST " + target +
                     " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 9\r\n\r\nabcd");
    EXPECT_GE(r.status, 400);
    EXPECT_LT(r.status, 500);
    r = http_call(port, "GET", target, "", {{"x-huge", std::string(20 * 1024, 'a')}});
    EXPECT_EQ(r.status, 431);
    r = raw_http(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    EXPECT_EQ(r.status, 400);
  }
  EXPECT_EQ(upstream_count("echo/smuggle"), 0);
}

TEST_F(ambassador_process, name_resolution_follows_the_resolve_file) {
  auto r = http_call(frontend_port_, "GET", "/v1.0/invoke/ghost/method/echo");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("ERR_DIRECT_INVOKE"), std::string::npos);
  write_file(*resolve_file_, "apps:\n  backend: \"127.0.0.1:" + std::to_string(backend_port_) +
                                 "\"\n  ghost: \"127.0.0.1:" + std::to_string(upstream_port_) +
                                 "\"\n");
  // The ghost app now resolves (to the upstream itself, which echoes the hop).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    std::this_thread::sleep_for(100ms);
    r = http_call(frontend_port_, "GET", "/v1.0/invoke/ghost/method/echo");
  } while (r.status != 200 && std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("/v1.0/invoke/ghost/method/echo"), std::string::npos);
  EXPECT_NE(r.body.find("\"outrider-invoke-from\": \"frontend\""), std::string::npos);
}

TEST_F(ambassador_process, metrics_count_attempts_retries_and_timeouts_per_target) {
  invoke("GET", "/flaky/m/1");
  auto text = http_call(metrics_port_, "GET", "/metrics").body;
  EXPECT_NE(text.find("outrider_ambassador_attempts_total{target=\"app:backend\"}"),
            std::string::npos);
  EXPECT_NE(text.find("outrider_ambassador_retries_total{target=\"app:backend\"}"),
            std::string::npos);
  EXPECT_NE(text.find("outrider_ambassador_timeouts_total{target=\"app:backend\"}"),
            std::string::npos);
}

TEST_F(ambassador_process, metadata_lists_output_bindings_and_http_endpoints) {
  auto r = http_call(frontend_port_, "GET", "/v1.0/metadata");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto doc = json::parse(r.body).as_object();
  std::map<std::string, json::object> bindings;
  for (const auto& c : doc.at("components").as_array()) {
    const auto& o = c.as_object();
    if (o.at("type").as_string().starts_with("bindings.")) {
      bindings[std::string(o.at("name").as_string())] = o;
    }
  }
  ASSERT_EQ(bindings.size(), 2U) << r.body;
  for (const auto& name : {"guarded", "upstream"}) {
    ASSERT_EQ(bindings.count(name), 1U) << name << " missing: " << r.body;
    const auto& b = bindings.at(name);
    EXPECT_EQ(b.at("type").as_string(), "bindings.http");
    EXPECT_EQ(b.at("version").as_string(), "v1");
    EXPECT_EQ(json::serialize(b.at("capabilities")), R"(["OUTPUT_BINDING"])");
  }
  EXPECT_EQ(json::serialize(doc.at("httpEndpoints")), R"([{"name":"ext"},{"name":"extpath"}])");
  // The listed endpoint is callable by its name.
  auto e = http_call(frontend_port_, "GET", "/v1.0/invoke/ext/method/echo");
  EXPECT_EQ(e.status, 200) << e.body;
}

// A call's URL is the endpoint's baseUrl (its path kept, one slash between) and the call's
// path and query, by path and by dapr-app-id header; a path the URL grammar refuses is a 400.
TEST_F(ambassador_process, http_endpoint_calls_join_the_base_path) {
  auto r = http_call(frontend_port_, "GET", "/v1.0/invoke/extpath/method/items/7?x=1%202");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).as_object().at("path").as_string(), "/echo/base/items/7?x=1%202");
  r = http_call(frontend_port_, "GET", "/q?z=2", "", {{"dapr-app-id", "extpath"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).as_object().at("path").as_string(), "/echo/base/q?z=2");
  r = http_call(frontend_port_, "GET", "/v1.0/invoke/ext/method/echo");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).as_object().at("path").as_string(), "/echo");
  r = raw_http(
      frontend_port_,
      "GET /echo/a|b HTTP/1.1\r\nHost: x\r\ndapr-app-id: ext\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.body;
}

}  // namespace
}  // namespace outrider
