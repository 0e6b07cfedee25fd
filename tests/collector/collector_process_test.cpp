// The real `outrider collector` process: receivers and query API over HTTP,
// durability across a restart, and clients no one here wrote: the
// OpenTelemetry JS SDK exporters (npm; OTLP/HTTP JSON, OTLP/HTTP protobuf,
// Zipkin) and py-zipkin (Debian's python3-py-zipkin).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>

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
using testing::run_shell;

// The value of "key":"value" in a flat JSON object.
std::string json_field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const auto at = json.find(needle);
  if (at == std::string::npos) return {};
  const auto start = at + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

const std::filesystem::path here =
    std::filesystem::path(OUTRIDER_SOURCE_DIR) / "tests" / "collector";

// The port of the first "http://127.0.0.1:PORT" after `after` in `text` (0 if none).
std::uint16_t port_after(const std::string& text, const std::string& after) {
  const std::string prefix = "http://127.0.0.1:";
  const auto at = text.find(prefix, text.find(after));
  if (at == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::stoi(text.substr(at + prefix.size(), 5)));
}

class collector_process : public ::testing::Test {
 protected:
  // The collector binds port 0 and the test reads the ports back from its
  // start-up line: ports picked before the process binds them can be taken by
  // another test meanwhile (this made py_zipkin_client flaky under load).
  std::unique_ptr<process> start() {
    auto p = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "collector", "--data-dir", data_.path(),
                                 "--otlp-listen", "127.0.0.1:0", "--zipkin-listen", "127.0.0.1:0"});
    const std::string ready = "outrider collector listening on";
    EXPECT_TRUE(p->wait_for_output(ready, 120s)) << p->output();
    const std::string out = p->output();
    otlp_port_ = port_after(out, ready);
    zipkin_port_ = port_after(out, "(OTLP/HTTP) and");
    EXPECT_NE(otlp_port_, 0) << out;
    EXPECT_NE(zipkin_port_, 0) << out;
    return p;
  }

  testing::temp_dir data_;
  std::uint16_t otlp_port_ = 0;
  std::uint16_t zipkin_port_ = 0;
};

TEST_F(collector_process, stores_durably_and_answers_after_restart) {
  const std::string spans =
      R"([{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","kind":"SERVER","name":"get /",)"
      R"("timestamp":1700000000000000,"duration":1500,"localEndpoint":{"serviceName":"web"},"tags":{"k":"v"}}])";
  std::string before;
  {
    auto p = start();
    EXPECT_EQ(http_call(zipkin_port_, "POST", "/api/v2/spans", spans).status, 202);
    EXPECT_EQ(http_call(zipkin_port_, "POST", "/api/v2/spans", "[{bad").status, 400);
    EXPECT_EQ(http_call(otlp_port_, "POST", "/v1/traces", "{}").status, 200);
    auto got = http_call(zipkin_port_, "GET", "/api/v2/trace/463ac35c9f6413ad48485a3953bb6124");
    ASSERT_EQ(got.status, 200);
    before = got.body;
    EXPECT_NE(before.find("\"name\":\"get /\""), std::string::npos) << before;
    EXPECT_EQ(
        http_call(zipkin_port_, "GET", "/api/v2/trace/463ac35c9f6413ad48485a3953bb6125").status,
        404);
    auto metrics = http_call(zipkin_port_, "GET", "/metrics");
    EXPECT_NE(metrics.body.find("outrider_collector_spans_stored_total 1"), std::string::npos)
        << metrics.body;
    EXPECT_EQ(p->stop(), 0);
  }
  auto p = start();
  auto got = http_call(zipkin_port_, "GET", "/api/v2/trace/463ac35c9f6413ad48485a3953bb6124");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, before);
  EXPECT_EQ(http_call(zipkin_port_, "GET", "/api/v2/services").body, R"(["web"])");
  auto search = http_call(
      zipkin_port_, "GET",
      "/api/v2/traces?serviceName=web&annotationQuery=k%3Dv&endTs=1700000001000&lookback=60000");
  EXPECT_EQ(search.body, "[" + before + "]");
}

TEST_F(collector_process, opentelemetry_js_exporters) {
  int code = 0;
  run_shell("command -v npm >/dev/null && command -v node >/dev/null", code);
  if (code != 0) GTEST_SKIP() << "node/npm not installed";
  const std::string dir = (here / "otel-js").string();
  // Idempotent: installs the locked versions only when node_modules is missing.
  const std::string install = "cd '" + dir +
                              "' && { [ -d node_modules/@opentelemetry/exporter-zipkin ] || "
                              "npm ci --no-audit --no-fund >/dev/null 2>&1; }";
  run_shell(install, code);
  ASSERT_EQ(code, 0) << "npm ci failed in " << dir;
  auto p = start();
  const std::string ids =
      run_shell("cd '" + dir + "' && node send.js 127.0.0.1:" + std::to_string(otlp_port_) +
                    " 127.0.0.1:" + std::to_string(zipkin_port_),
                code);
  ASSERT_EQ(code, 0) << ids;
  for (const std::string service : {"js-otlp-json", "js-otlp-proto", "js-zipkin"}) {
    SCOPED_TRACE(service);
    const std::string trace_id = json_field(ids, service);
    ASSERT_EQ(trace_id.size(), 32u) << ids;
    auto trace = http_call(zipkin_port_, "GET", "/api/v2/trace/" + trace_id);
    ASSERT_EQ(trace.status, 200);
    const std::string& b = trace.body;
    EXPECT_EQ(count(b, "\"traceId\":\"" + trace_id + "\""), 2u) << b;
    EXPECT_NE(b.find("\"kind\":\"SERVER\",\"name\":\"get /orders\""), std::string::npos) << b;
    EXPECT_NE(b.find("\"kind\":\"CLIENT\",\"name\":\"charge\""), std::string::npos) << b;
    EXPECT_NE(b.find("\"localEndpoint\":{\"serviceName\":\"" + service + "\""), std::string::npos)
        << b;
    // OTLP: the collector derives the remote service from peer.service; the JS Zipkin
    // exporter sends no remoteEndpoint, only the tag, and Zipkin stores what it is sent.
    if (service != "js-zipkin") {
      EXPECT_NE(b.find("\"remoteEndpoint\":{\"serviceName\":\"payments\""), std::string::npos) << b;
    }
    EXPECT_NE(b.find("\"peer.service\":\"payments\""), std::string::npos) << b;
    EXPECT_NE(b.find("\"error\":\"card declined\""), std::string::npos) << b;
    EXPECT_NE(b.find("\"http.method\":\"GET\""), std::string::npos) << b;
    EXPECT_NE(b.find("\"value\":\"request sent\""), std::string::npos) << b;
    EXPECT_NE(
        http_call(zipkin_port_, "GET", "/api/v2/spans?serviceName=" + service).body.find("charge"),
        std::string::npos);
    auto search = http_call(zipkin_port_, "GET",
                            "/api/v2/traces?serviceName=" + service + "&spanName=charge");
    EXPECT_NE(search.body.find(trace_id), std::string::npos) << search.body;
    if (service != "js-zipkin") {
      // OTLP keeps what Zipkin's model cannot: links, typed attributes, resource, status.
      auto native = http_call(zipkin_port_, "GET", "/api/outrider/v1/trace/" + trace_id);
      ASSERT_EQ(native.status, 200);
      EXPECT_NE(native.body.find("\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\""),
                std::string::npos)
          << native.body;
      EXPECT_NE(native.body.find("{\"key\":\"retry.count\",\"value\":{\"intValue\":\"2\"}}"),
                std::string::npos)
          << native.body;
      EXPECT_NE(native.body.find("\"status\":{\"code\":\"ERROR\",\"message\":\"card declined\"}"),
                std::string::npos)
          << native.body;
      EXPECT_NE(native.body.find("\"deployment.environment\""), std::string::npos) << native.body;
    }
  }
  EXPECT_EQ(http_call(zipkin_port_, "GET", "/api/v2/services").body,
            R"(["js-otlp-json","js-otlp-proto","js-zipkin"])");
}

TEST_F(collector_process, py_zipkin_client) {
  int code = 0;
  run_shell("/usr/bin/python3 -c 'import py_zipkin' 2>/dev/null", code);
  if (code != 0) GTEST_SKIP() << "python3-py-zipkin not installed (scripts/setup.sh installs it)";
  auto p = start();
  const std::string out = run_shell("/usr/bin/python3 '" + (here / "py_zipkin_client.py").string() +
                                        "' 127.0.0.1:" + std::to_string(zipkin_port_),
                                    code);
  ASSERT_EQ(code, 0) << out;
  std::string trace_id = out.substr(0, out.find('\n'));
  ASSERT_EQ(trace_id.size(), 32u) << out;
  auto trace = http_call(zipkin_port_, "GET", "/api/v2/trace/" + trace_id);
  ASSERT_EQ(trace.status, 200);
  const std::string& b = trace.body;
  EXPECT_EQ(count(b, "\"traceId\":\"" + trace_id + "\""), 2u) << b;
  EXPECT_NE(b.find("\"kind\":\"SERVER\",\"name\":\"reserve item\""), std::string::npos) << b;
  EXPECT_NE(b.find("\"kind\":\"CLIENT\",\"name\":\"insert row\""), std::string::npos) << b;
  EXPECT_NE(
      b.find(
          "\"remoteEndpoint\":{\"serviceName\":\"postgres\",\"ipv4\":\"127.0.0.1\",\"port\":5432}"),
      std::string::npos)
      << b;
  EXPECT_NE(b.find("\"order.id\":\"42\""), std::string::npos) << b;
  EXPECT_EQ(http_call(zipkin_port_, "GET", "/api/v2/remoteServices?serviceName=py-orders").body,
            R"(["postgres"])");
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  // A wide window: under load the client may take long to start and send.
  auto deps = http_call(
      zipkin_port_, "GET",
      "/api/v2/dependencies?endTs=" + std::to_string(now_ms + 60000) + "&lookback=3600000");
  EXPECT_EQ(deps.body, R"([{"parent":"py-orders","child":"postgres","callCount":1}])");
}

}  // namespace
}  // namespace outrider
