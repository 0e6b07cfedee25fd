// The real `outrider collector` serving the analysis endpoints, and
// `outrider analyze` reading them (and a span store on disk): spans posted
// through the Zipkin API come back as a service graph and a coupling report.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
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

// Zipkin v2 spans of `traces` traces: checkout -> orders -> inventory -> pricing, each
// waiting for the next (a 3-deep blocking chain), and orders -> shipping by message.
std::string zipkin_spans(int traces, std::int64_t now_us) {
  std::string out = "[";
  auto span = [&](int t, int id, int parent, const char* service, const char* name,
                  const char* kind, int start_ms, int end_ms, const char* remote) {
    if (out.size() > 1) out += ',';
    char trace_id[17];
    std::snprintf(trace_id, sizeof trace_id, "%016x", 0xab00 + t);
    out += std::string(R"({"traceId":")") + trace_id + R"(","id":"00000000000000)" +
           (id < 10 ? "0" : "") + std::to_string(id) + "\"";
    if (parent != 0) out += R"(,"parentId":"000000000000000)" + std::to_string(parent) + "\"";
    out += std::string(R"(,"name":")") + name + R"(","kind":")" + kind + R"(","timestamp":)" +
           std::to_string(now_us - 60'000'000LL * (t + 1) + start_ms * 1000LL) + R"(,"duration":)" +
           std::to_string((end_ms - start_ms) * 1000LL) + R"(,"localEndpoint":{"serviceName":")" +
           service + "\"}";
    if (remote[0] != '\0')
      out += std::string(R"(,"remoteEndpoint":{"serviceName":")") + remote + "\"}";
    out += '}';
  };
  for (int t = 0; t < traces; ++t) {
    span(t, 1, 0, "checkout", "post /checkout", "SERVER", 0, 400, "");
    span(t, 2, 1, "checkout", "post /orders", "CLIENT", 10, 390, "orders");
    span(t, 3, 2, "orders", "post /orders", "SERVER", 11, 389, "");
    span(t, 4, 3, "orders", "get /stock", "CLIENT", 20, 380, "inventory");
    span(t, 5, 4, "inventory", "get /stock", "SERVER", 21, 379, "");
    span(t, 6, 5, "inventory", "get /price", "CLIENT", 30, 370, "pricing");
    span(t, 7, 6, "pricing", "get /price", "SERVER", 31, 369, "");
    span(t, 8, 3, "orders", "orders.placed", "PRODUCER", 385, 386, "broker");
    span(t, 9, 8, "shipping", "orders.placed", "CONSUMER", 900, 950, "");
  }
  return out + "]";
}

class analysis_process : public ::testing::Test {
 protected:
  std::unique_ptr<process> start() {
    auto p = std::make_unique<process>(
        std::vector<std::string>{outrider_binary(), "collector", "--data-dir", data_.path(),
                                 "--otlp-listen", "127.0.0.1:" + std::to_string(port_),
                                 "--zipkin-listen", "127.0.0.1:" + std::to_string(port_)});
    EXPECT_TRUE(p->wait_for_output("outrider collector listening on", 20s)) << p->output();
    return p;
  }

  testing::temp_dir data_;
  std::uint16_t port_ = testing::free_port();
};

TEST_F(analysis_process, the_collector_serves_the_graph_and_the_report_and_analyze_reads_them) {
  auto collector = start();
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto posted = http_call(port_, "POST", "/api/v2/spans", zipkin_spans(4, now_us));
  ASSERT_EQ(posted.status, 202) << posted.body;

  const auto graph = http_call(port_, "GET", "/api/outrider/v1/graph?lookback=3600000");
  ASSERT_EQ(graph.status, 200) << graph.body;
  const auto g = boost::json::parse(graph.body).as_object();
  ASSERT_EQ(g.at("nodes").as_array().size(), 5u) << graph.body;
  bool saw_async = false;
  for (const auto& e : g.at("edges").as_array()) {
    EXPECT_EQ(e.at("calls").as_int64(), 4) << graph.body;
    if (e.at("kind").as_string() == "async") {
      saw_async = true;
      EXPECT_EQ(e.at("from").as_string(), "orders");
      EXPECT_EQ(e.at("to").as_string(), "shipping");
    }
  }
  EXPECT_TRUE(saw_async) << graph.body;

  const auto analysis = http_call(port_, "GET", "/api/outrider/v1/analysis?lookback=3600000");
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  const auto a = boost::json::parse(analysis.body).as_object();
  EXPECT_EQ(a.at("traces").as_int64(), 4);
  const auto& top = a.at("entryPoints").at(0).as_object();
  EXPECT_EQ(top.at("service").as_string(), "checkout");
  EXPECT_EQ(top.at("syncDepth").at("max").as_int64(), 3);
  const auto& first = a.at("findings").at(0).as_object();
  EXPECT_EQ(first.at("severity").as_string(), "high");
  EXPECT_EQ(first.at("kind").as_string(), "blocking_chain");
  const std::string trace_id(first.at("exampleTraceIds").at(0).as_string());
  EXPECT_EQ(http_call(port_, "GET", "/api/outrider/v1/trace/" + trace_id).status, 200);

  EXPECT_EQ(http_call(port_, "GET", "/api/outrider/v1/analysis?lookback=x").status, 400);

  int code = -1;
  const std::string base = outrider_binary() +
                           " analyze --collector http://127.0.0.1:" + std::to_string(port_) +
                           " --lookback 1h";
  const auto json = run_shell(base + " --format json", code);
  ASSERT_EQ(code, 0) << json;
  const auto cli = boost::json::parse(json).as_object();
  EXPECT_EQ(cli.at("traces").as_int64(), 4);
  EXPECT_EQ(cli.at("findings").at(0).at("text"), first.at("text"));
  EXPECT_EQ(cli.at("graph").at("edges").as_array().size(), g.at("edges").as_array().size());

  const auto text = run_shell(base, code);
  ASSERT_EQ(code, 0) << text;
  EXPECT_NE(text.find("checkout → orders → inventory → pricing is a 3-deep blocking chain in "
                      "100% of traces of post /checkout"),
            std::string::npos)
      << text;
  const auto md = run_shell(base + " --format markdown", code);
  ASSERT_EQ(code, 0);
  EXPECT_NE(md.find("# Coupling report"), std::string::npos);

  run_shell(base + " --format yaml 2>/dev/null", code);
  EXPECT_EQ(code, 2);
  run_shell(outrider_binary() + " analyze --collector http://127.0.0.1:1 2>/dev/null", code);
  EXPECT_EQ(code, 1);

  // The same store read directly once the collector is gone.
  ASSERT_EQ(collector->stop(), 0);
  const auto offline = run_shell(
      outrider_binary() + " analyze --data-dir " + data_.path() + " --lookback 1h --format json",
      code);
  ASSERT_EQ(code, 0) << offline;
  EXPECT_EQ(boost::json::parse(offline).at("findings").at(0).at("text"), first.at("text"));
}

}  // namespace
}  // namespace outrider
