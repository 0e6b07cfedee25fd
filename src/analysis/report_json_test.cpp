// The JSON bodies (contract fields, round trip through the parsers), the text
// and Markdown renderings, analysis of a span store's window and the two HTTP
// routes.
#include "analysis/report_json.h"

#include <boost/json.hpp>
#include <future>
#include <gtest/gtest.h>

#include "analysis/render.h"
#include "analysis/routes.h"
#include "io/mem_file_system.h"
#include "tracing/span_store.h"

namespace outrider::analysis {
namespace {

using tracing::span;
using tracing::span_kind;

constexpr std::int64_t t0_ms = 1'700'000'000'000;
constexpr std::int64_t ns_per_ms = 1'000'000;

span make(std::uint64_t trace, std::uint64_t id, std::uint64_t parent, std::string service,
          std::string name, span_kind kind, std::int64_t start_ms, std::int64_t end_ms,
          std::string remote = {}) {
  span s;
  s.trace_id = id128{7, trace};
  s.span_id = id;
  s.parent_id = parent;
  s.local_endpoint.service_name = std::move(service);
  s.remote_endpoint.service_name = std::move(remote);
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = start_ms * ns_per_ms;
  s.end_ns = end_ms * ns_per_ms;
  return s;
}

// checkout -> orders -> stock -> orders (a cycle), and a message to shipping.
std::vector<span> sample_trace(std::uint64_t trace, std::int64_t at_ms) {
  const std::int64_t t = at_ms;
  return {
      make(trace, 1, 0, "checkout", "POST /checkout", span_kind::server, t, t + 300),
      make(trace, 2, 1, "checkout", "POST /orders", span_kind::client, t + 10, t + 290, "orders"),
      make(trace, 3, 2, "orders", "POST /orders", span_kind::server, t + 11, t + 289),
      make(trace, 4, 3, "orders", "GET /stock", span_kind::client, t + 20, t + 280, "stock"),
      make(trace, 5, 4, "stock", "GET /stock", span_kind::server, t + 21, t + 279),
      make(trace, 6, 5, "stock", "GET /orders/1", span_kind::client, t + 30, t + 270, "orders"),
      make(trace, 7, 6, "orders", "GET /orders/1", span_kind::server, t + 31, t + 269),
      make(trace, 8, 3, "orders", "orders.placed send", span_kind::producer, t + 285, t + 286),
      make(trace, 9, 8, "shipping", "orders.placed process", span_kind::consumer, t + 400, t + 450),
  };
}

analysis_result sample_result() {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 3; ++i) traces.push_back(sample_trace(i, t0_ms + 1000 * i));
  return analyze(traces, time_window{t0_ms, t0_ms + 60'000});
}

TEST(report_json, the_analysis_body_has_the_contract_fields) {
  const auto a = sample_result();
  const auto body = boost::json::parse(to_json(a.coupling)).as_object();
  EXPECT_EQ(body.at("window").at("startMs").as_int64(), t0_ms);
  EXPECT_EQ(body.at("window").at("endMs").as_int64(), t0_ms + 60'000);
  EXPECT_EQ(body.at("traces").as_int64(), 3);
  const auto& entries = body.at("entryPoints").as_array();
  ASSERT_EQ(entries.size(), 2u);
  const auto& top = entries[0].as_object();
  EXPECT_EQ(top.at("service").as_string(), "checkout");
  EXPECT_EQ(top.at("operation").as_string(), "POST /checkout");
  EXPECT_EQ(top.at("traces").as_int64(), 3);
  EXPECT_TRUE(top.at("score").is_int64());
  EXPECT_EQ(top.at("syncDepth").at("max").as_int64(), 3);
  EXPECT_EQ(top.at("syncDepth").at("p50").as_int64(), 3);
  EXPECT_EQ(top.at("fanOut").at("max").as_int64(), 1);
  EXPECT_TRUE(top.at("syncShare").is_number());
  EXPECT_EQ(top.at("availability").as_int64(), 1);
  EXPECT_EQ(top.at("exampleTraceIds").as_array().size(), 3u);
  const auto& findings = body.at("findings").as_array();
  ASSERT_FALSE(findings.empty());
  for (const auto& item : findings) {
    const auto& f = item.as_object();
    for (const char* key :
         {"severity", "kind", "text", "entryPoint", "services", "metrics", "exampleTraceIds"}) {
      EXPECT_TRUE(f.contains(key)) << key;
    }
  }
  EXPECT_EQ(findings[0].at("severity").as_string(), "high");
  EXPECT_EQ(body.at("cycles").as_array().size(), 1u);
  EXPECT_EQ(body.at("cycles").at(0).as_array().size(), 2u);  // orders <-> stock
}

TEST(report_json, the_graph_body_has_the_contract_fields) {
  const auto a = sample_result();
  const auto body = boost::json::parse(to_json(a.graph)).as_object();
  const auto& nodes = body.at("nodes").as_array();
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_EQ(nodes[0].at("service").as_string(), "checkout");
  EXPECT_EQ(nodes[0].at("spans").as_int64(), 6);
  EXPECT_EQ(nodes[0].at("errors").as_int64(), 0);
  const auto& edges = body.at("edges").as_array();
  ASSERT_EQ(edges.size(), 4u);
  const auto& first = edges[0].as_object();
  EXPECT_EQ(first.at("from").as_string(), "checkout");
  EXPECT_EQ(first.at("to").as_string(), "orders");
  EXPECT_EQ(first.at("kind").as_string(), "sync");
  EXPECT_EQ(first.at("calls").as_int64(), 3);
  EXPECT_EQ(first.at("errors").as_int64(), 0);
  EXPECT_EQ(first.at("p50Ms").as_int64(), 280);
  EXPECT_EQ(first.at("p99Ms").as_int64(), 280);
  const auto& async = edges[1].as_object();
  EXPECT_EQ(async.at("from").as_string(), "orders");
  EXPECT_EQ(async.at("to").as_string(), "shipping");
  EXPECT_EQ(async.at("kind").as_string(), "async");
  EXPECT_EQ(async.at("p50Ms").as_int64(), 115);
}

TEST(report_json, parsing_gives_back_what_was_written) {
  const auto a = sample_result();
  auto graph = parse_graph_json(to_json(a.graph));
  ASSERT_TRUE(graph) << graph.error().message;
  EXPECT_EQ(*graph, a.graph);
  auto rep = parse_report_json(to_json(a.coupling));
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(to_json(*rep), to_json(a.coupling));
  // The combined form carries both.
  auto combined = boost::json::parse(to_json(a)).as_object();
  EXPECT_TRUE(combined.contains("graph"));
  EXPECT_TRUE(combined.contains("entryPoints"));
}

TEST(report_json, bad_bodies_are_errors) {
  EXPECT_FALSE(parse_report_json("not json"));
  EXPECT_FALSE(parse_report_json("[]"));
  EXPECT_FALSE(parse_report_json(R"({"window":{"startMs":1,"endMs":2},"traces":"x"})"));
  auto g = parse_graph_json(R"({"nodes":[],"edges":[{"from":"a","to":"b","kind":"maybe",
      "calls":1,"errors":0,"p50Ms":1,"p99Ms":1}]})");
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("sync or async"), std::string::npos);
}

TEST(render, text_and_markdown_show_findings_entries_cycles_and_the_graph) {
  const auto a = sample_result();
  const auto text = render_text(a);
  EXPECT_NE(text.find("Outrider coupling report: window 2023-11-14T22:13:20Z"), std::string::npos)
      << text;
  EXPECT_NE(text.find("[high  ] checkout → orders → stock → orders is a 3-deep blocking chain"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("orders → stock → orders"), std::string::npos);
  EXPECT_NE(text.find("async orders → shipping: 3 calls"), std::string::npos) << text;
  const auto md = render_markdown(a);
  EXPECT_NE(md.find("# Coupling report"), std::string::npos);
  EXPECT_NE(md.find("| score | entry point |"), std::string::npos);
  EXPECT_NE(md.find("1. **high** "), std::string::npos) << md;
  EXPECT_NE(md.find("| checkout | orders | sync | 3 | 0 |"), std::string::npos) << md;
}

class store_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    tracing::span_store_options o;
    o.dir = "/data";
    auto s = tracing::span_store::open(fs_, o);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    // Five traces one minute apart.
    for (std::uint64_t i = 0; i < 5; ++i) {
      const auto spans = sample_trace(i + 1, t0_ms + 60'000 * static_cast<std::int64_t>(i));
      ASSERT_TRUE(store_->append(spans, wall_time(std::chrono::milliseconds(t0_ms))));
    }
    ASSERT_TRUE(store_->sync());
  }

  http::response get(const http::router& r, std::string target) {
    http::request req;
    req.method = "GET";
    req.target = target;
    http::split_target(target, req.path, req.query);
    std::promise<http::response> p;
    r.dispatch(std::move(req),
               http::responder([&p](http::response&& resp) { p.set_value(std::move(resp)); }));
    return p.get_future().get();
  }

  io::mem_file_system fs_;
  std::unique_ptr<tracing::span_store> store_;
};

TEST_F(store_fixture, analyze_store_reads_the_window_and_says_when_it_is_truncated) {
  // [t0 + 1 min, t0 + 3 min]: traces 2, 3 and 4.
  auto a = analyze_store(*store_, t0_ms + 180'000, 120'000, 100);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->coupling.traces, 3u);
  EXPECT_FALSE(a->coupling.truncated);
  EXPECT_EQ(a->coupling.window, (time_window{t0_ms + 60'000, t0_ms + 180'000}));
  auto few = analyze_store(*store_, t0_ms + 180'000, 120'000, 2);
  ASSERT_TRUE(few);
  EXPECT_EQ(few->coupling.traces, 2u);
  EXPECT_TRUE(few->coupling.truncated);
  EXPECT_FALSE(analyze_store(*store_, t0_ms, 0, 10));
  EXPECT_FALSE(analyze_store(*store_, 0, 10, 10));
}

TEST_F(store_fixture, the_routes_answer_the_graph_and_the_analysis) {
  http::router r;
  route_options o;
  o.now = [] { return wall_time(std::chrono::milliseconds(t0_ms + 600'000)); };
  add_routes(r, *store_, o);

  const auto graph = get(r, "/api/outrider/v1/graph");  // defaults: now, one hour back
  ASSERT_EQ(graph.status, 200) << graph.body;
  auto g = parse_graph_json(graph.body);
  ASSERT_TRUE(g) << g.error().message;
  ASSERT_FALSE(g->edges.empty());
  EXPECT_EQ(g->edges[0].calls, 5u);

  const auto analysis = get(
      r, "/api/outrider/v1/analysis?endTs=" + std::to_string(t0_ms + 60'000) + "&lookback=60000");
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  auto rep = parse_report_json(analysis.body);
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->traces, 2u);

  for (const char* bad : {"/api/outrider/v1/analysis?lookback=-5",
                          "/api/outrider/v1/graph?endTs=soon", "/api/outrider/v1/graph?endTs=0"}) {
    const auto resp = get(r, bad);
    EXPECT_EQ(resp.status, 400) << bad;
    EXPECT_NE(resp.body.find("ERR_INVALID_ARGUMENT"), std::string::npos) << resp.body;
  }
}

TEST_F(store_fixture, one_analysis_serves_both_routes_for_a_few_seconds) {
  auto now_ms = std::make_shared<std::int64_t>(t0_ms + 600'000);
  http::router r;
  route_options o;
  o.cache_ttl_ms = 5000;
  o.now = [now_ms] { return wall_time(std::chrono::milliseconds(*now_ms)); };
  add_routes(r, *store_, o);
  auto traces = [&](const std::string& target) {
    const auto resp = get(r, target);
    EXPECT_EQ(resp.status, 200) << resp.body;
    auto rep = parse_report_json(resp.body);
    return rep ? rep->traces : 0;
  };
  EXPECT_EQ(traces("/api/outrider/v1/analysis"), 5u);
  ASSERT_TRUE(store_->append(sample_trace(99, t0_ms + 300'000),
                             wall_time(std::chrono::milliseconds(t0_ms))));
  *now_ms += 1000;
  EXPECT_EQ(traces("/api/outrider/v1/analysis"), 5u);  // the answer of a second ago
  auto graph = parse_graph_json(get(r, "/api/outrider/v1/graph").body);
  ASSERT_TRUE(graph);
  EXPECT_EQ(graph->edges[0].calls, 5u);
  // Another window, or a stale answer: analysed again.
  EXPECT_EQ(traces("/api/outrider/v1/analysis?lookback=7200000"), 6u);
  *now_ms += 6000;
  EXPECT_EQ(traces("/api/outrider/v1/analysis"), 6u);
}

}  // namespace
}  // namespace outrider::analysis
