// The collector's HTTP API without sockets: recorded request/response pairs
// for the receivers (OTLP/HTTP, Zipkin) and the Zipkin v2 query API, written
// from the OTLP/HTTP specification and Zipkin's API definition.
#include "tracing/collector.h"

#include <boost/json.hpp>
#include <future>
#include <gtest/gtest.h>

#include "io/mem_file_system.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tracing/codec.h"
#include "tracing/compact_trace.h"

namespace outrider::tracing {
namespace {

using namespace std::chrono_literals;

// 2019-04-30T05:56:12Z and a bit: the Zipkin sample's time.
const wall_time fixed_now = wall_time{} + std::chrono::milliseconds(1556604172500);

class collector_api : public ::testing::Test {
 protected:
  void SetUp() override {
    span_store_options so;
    so.dir = "/data";
    store_ = std::move(*span_store::open(fs_, so));
    collector_options co;
    co.now = [] { return fixed_now; };
    co.max_queued_spans = 4;
    co.max_decompressed_bytes = 64 * 1024;
    collector_ = std::make_unique<collector>(*store_, &registry_, co);
    collector_->add_otlp_routes(routes_);
    collector_->add_zipkin_routes(routes_);
    collector_->start();
  }

  http::response call(std::string method, std::string target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::request req;
    req.method = std::move(method);
    req.target = std::move(target);
    http::split_target(req.target, req.path, req.query);
    req.body = std::move(body);
    for (auto& [k, v] : headers) req.headers.add(k, v);
    std::promise<http::response> p;
    auto f = p.get_future();
    routes_.dispatch(std::move(req),
                     http::responder([&p](http::response&& r) { p.set_value(std::move(r)); }));
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  io::mem_file_system fs_;
  metrics::registry registry_;
  std::unique_ptr<span_store> store_;
  std::unique_ptr<collector> collector_;
  http::router routes_;
};

constexpr std::string_view zipkin_spans = R"([
 {"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","kind":"SERVER","name":"GET /order",
  "timestamp":1556604172355737,"duration":150000,"localEndpoint":{"serviceName":"Frontend"},
  "tags":{"http.method":"GET","http.path":"/order"}},
 {"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"CLIENT",
  "name":"query","timestamp":1556604172400000,"duration":20000,"localEndpoint":{"serviceName":"frontend"},
  "remoteEndpoint":{"serviceName":"mysql"},"annotations":[{"timestamp":1556604172400001,"value":"retry"}]}
])";

TEST_F(collector_api, zipkin_post_then_every_query_endpoint) {
  auto posted = call("POST", "/api/v2/spans", std::string(zipkin_spans),
                     {{"Content-Type", "application/json"}});
  EXPECT_EQ(posted.status, 202);
  EXPECT_TRUE(posted.body.empty());

  auto services = call("GET", "/api/v2/services");
  EXPECT_EQ(services.status, 200);
  EXPECT_EQ(services.headers.get("Content-Type"), "application/json");
  EXPECT_EQ(services.body, R"(["frontend"])");
  EXPECT_EQ(call("GET", "/api/v2/spans?serviceName=frontend").body, R"(["get /order","query"])");
  EXPECT_EQ(call("GET", "/api/v2/spans?serviceName=unknown").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/spans").status, 400);
  EXPECT_EQ(call("GET", "/api/v2/remoteServices?serviceName=frontend").body, R"(["mysql"])");

  const std::string expected_trace =
      R"([{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","kind":"SERVER","name":"get /order",)"
      R"("timestamp":1556604172355737,"duration":150000,"localEndpoint":{"serviceName":"frontend"},)"
      R"("tags":{"http.method":"GET","http.path":"/order"}},)"
      R"({"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"CLIENT",)"
      R"("name":"query","timestamp":1556604172400000,"duration":20000,"localEndpoint":{"serviceName":"frontend"},)"
      R"("remoteEndpoint":{"serviceName":"mysql"},"annotations":[{"timestamp":1556604172400001,"value":"retry"}]}])";
  auto trace = call("GET", "/api/v2/trace/5af7183fb1d4cf5f");
  EXPECT_EQ(trace.status, 200);
  EXPECT_EQ(trace.body, expected_trace);
  // A 32-digit id with a zero high half is the same trace.
  EXPECT_EQ(call("GET", "/api/v2/trace/00000000000000005af7183fb1d4cf5f").body, expected_trace);
  auto missing = call("GET", "/api/v2/trace/1234567890abcdef");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "1234567890abcdef not found");
  EXPECT_EQ(call("GET", "/api/v2/trace/not-hex").status, 400);

  // endTs defaults to now, lookback to a day: the trace (at now - 145 ms) is found.
  EXPECT_EQ(call("GET", "/api/v2/traces").body, "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?serviceName=frontend&spanName=query").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?serviceName=frontend&spanName=all").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?serviceName=backend").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/traces?remoteServiceName=mysql").body, "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?annotationQuery=http.method%3DGET%20and%20retry").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?annotationQuery=http.method%3DPOST").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/traces?minDuration=100000").body, "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?minDuration=200000").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/traces?minDuration=10000&maxDuration=30000").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?endTs=1556604172000&lookback=1000").body,
            "[]");  // before the root
  EXPECT_EQ(call("GET", "/api/v2/traces?endTs=1556604172400&lookback=100").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traces?limit=0").status, 400);
  EXPECT_EQ(call("GET", "/api/v2/traces?maxDuration=5").body,
            "maxDuration is only valid with minDuration");
  EXPECT_EQ(call("GET", "/api/v2/traces?endTs=abc").status, 400);

  EXPECT_EQ(call("GET", "/api/v2/traceMany?traceIds=5af7183fb1d4cf5f,1234567890abcdef").body,
            "[" + expected_trace + "]");
  EXPECT_EQ(call("GET", "/api/v2/traceMany?traceIds=").status, 400);

  EXPECT_EQ(call("GET", "/api/v2/dependencies?endTs=1556604173000&lookback=86400000").body,
            R"([{"parent":"frontend","child":"mysql","callCount":1}])");
  EXPECT_EQ(call("GET", "/api/v2/dependencies").status, 400);
  EXPECT_EQ(call("GET", "/api/v2/dependencies?endTs=1000&lookback=10").body, "[]");

  EXPECT_EQ(call("GET", "/api/v2/autocompleteKeys").body, R"(["http.method","http.path"])");
  EXPECT_EQ(call("GET", "/api/v2/autocompleteValues?key=http.method").body, R"(["GET"])");
  EXPECT_EQ(call("GET", "/api/v2/autocompleteValues?key=nothing").body, "[]");
  auto config = call("GET", "/zipkin/config.json");
  EXPECT_EQ(config.status, 200);
  EXPECT_NE(config.body.find("\"queryLimit\":10"), std::string::npos);

  auto native = call("GET", "/api/outrider/v1/trace/5af7183fb1d4cf5f");
  EXPECT_EQ(native.status, 200);
  EXPECT_NE(native.body.find(R"("traceId":"00000000000000005af7183fb1d4cf5f","spans":[)"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/api/outrider/v1/trace/1234").status, 404);

  EXPECT_NE(registry_.expose().find("outrider_collector_spans_stored_total 2"), std::string::npos)
      << registry_.expose();
}

// The compact encoding the UI loads: string table, resources table, relative times, and the
// spans of other traces that link into the trace (found through the store's link index).
TEST_F(collector_api, native_trace_compact_format_gzip_and_links_into_the_trace) {
  const id128 placed{0, 0xaaaa};
  const id128 report{0, 0xbbbb};
  auto resource = std::make_shared<span_resource>();
  resource->attributes.push_back({"service.name", attribute_value::of("orders")});
  resource->scope_name = "demo";
  resource->scope_version = "1";
  std::vector<span> spans(3);
  spans[0].trace_id = placed;
  spans[0].span_id = 1;
  spans[0].name = "place order";
  spans[0].kind = span_kind::server;
  spans[0].start_ns = 1'556'604'172'000'000'000;
  spans[0].end_ns = spans[0].start_ns + 5000;
  spans[0].local_endpoint.service_name = "orders";
  spans[0].attributes.push_back({"http.status_code", attribute_value::of_int(201)});
  spans[0].resource = resource;
  spans[1] = spans[0];
  spans[1].span_id = 2;
  spans[1].parent_id = 1;
  spans[1].name = "charge";
  spans[1].kind = span_kind::client;
  spans[1].start_ns += 1000;
  spans[1].end_ns = spans[1].start_ns + 2000;
  spans[1].status = {status_code::error, "gateway 503"};
  spans[1].events.push_back({spans[1].start_ns + 500, "retry", {}});
  spans[1].links.push_back({report, 9, "", {}});
  spans[2].trace_id = report;
  spans[2].span_id = 9;
  spans[2].name = "nightly report";
  spans[2].start_ns = spans[0].start_ns + 7'000'000'000;
  spans[2].end_ns = spans[2].start_ns + 1000;
  spans[2].local_endpoint.service_name = "reports";
  spans[2].links.push_back({placed, 1, "", {{"reason", attribute_value::of("audit")}}});
  ASSERT_TRUE(store_->append(spans, fixed_now));
  ASSERT_TRUE(store_->sync());

  auto r = call("GET", "/api/outrider/v1/trace/aaaa?format=compact");
  ASSERT_EQ(r.status, 200) << r.body;
  auto json = boost::json::parse(r.body).as_object();
  EXPECT_EQ(json.at("format"), "compact-1");
  EXPECT_EQ(json.at("traceId"), "0000000000000000000000000000aaaa");
  EXPECT_EQ(json.at("base"), "1556604172000000000");
  const auto& strings = json.at("strings").as_array();
  auto str = [&](const boost::json::value& i) {
    return std::string(strings.at(static_cast<std::size_t>(i.as_int64())).as_string());
  };
  EXPECT_EQ(strings.at(0), "");
  ASSERT_EQ(json.at("resources").as_array().size(), 1U);  // shared, written once
  const auto& res = json.at("resources").as_array().at(0).as_array();
  EXPECT_EQ(str(res.at(0).as_array().at(1)), "orders");
  EXPECT_EQ(str(res.at(1)), "demo");
  const auto& out = json.at("spans").as_array();
  ASSERT_EQ(out.size(), 2U);
  const auto& root = out.at(0).as_array();
  EXPECT_EQ(root.at(0), "0000000000000001");
  EXPECT_EQ(root.at(1), "");
  EXPECT_EQ(str(root.at(2)), "place order");
  EXPECT_EQ(str(root.at(3)), "orders");
  EXPECT_EQ(root.at(4), static_cast<std::int64_t>(span_kind::server));
  EXPECT_EQ(root.at(5), 0);
  EXPECT_EQ(root.at(6), 5000);
  EXPECT_EQ(root.at(9), 0);
  EXPECT_EQ(str(root.at(11).as_array().at(0)), "http.status_code");
  EXPECT_EQ(str(root.at(11).as_array().at(1)), "201");
  const auto& charge = out.at(1).as_array();
  EXPECT_EQ(charge.at(1), "0000000000000001");
  EXPECT_EQ(charge.at(5), 1000);
  EXPECT_EQ(charge.at(7), 2);  // ERROR
  EXPECT_EQ(str(charge.at(8)), "gateway 503");
  EXPECT_EQ(charge.at(12).as_array().at(0), 1500);
  EXPECT_EQ(str(charge.at(12).as_array().at(1)), "retry");
  EXPECT_EQ(str(charge.at(13).as_array().at(0)), "0000000000000000000000000000bbbb");
  EXPECT_EQ(charge.at(13).as_array().at(1), "0000000000000009");
  // The report trace links into this one: [traceId, spanId, name, service, targetSpanId].
  const auto& linked = json.at("linkedFrom").as_array();
  ASSERT_EQ(linked.size(), 1U);
  EXPECT_EQ(str(linked.at(0).as_array().at(0)), "0000000000000000000000000000bbbb");
  EXPECT_EQ(linked.at(0).as_array().at(1), "0000000000000009");
  EXPECT_EQ(str(linked.at(0).as_array().at(2)), "nightly report");
  EXPECT_EQ(str(linked.at(0).as_array().at(3)), "reports");
  EXPECT_EQ(linked.at(0).as_array().at(4), "0000000000000001");
  // And the other way round: the placement's charge links into the report.
  auto back = boost::json::parse(call("GET", "/api/outrider/v1/trace/bbbb?format=compact").body);
  EXPECT_EQ(back.at("linkedFrom").as_array().size(), 1U);

  // gzip when the client accepts it (both formats), identical once inflated.
  auto zipped = call("GET", "/api/outrider/v1/trace/aaaa?format=compact", {},
                     {{"Accept-Encoding", "gzip, deflate, br"}});
  EXPECT_EQ(zipped.headers.get("Content-Encoding").value_or(""), "gzip");
  EXPECT_EQ(*gunzip(zipped.body, 1 << 20), r.body);
  auto native = call("GET", "/api/outrider/v1/trace/aaaa", {}, {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(native.headers.get("Content-Encoding").value_or(""), "gzip");
  EXPECT_NE(gunzip(native.body, 1 << 20)->find("\"spans\":["), std::string::npos);
  EXPECT_FALSE(call("GET", "/api/outrider/v1/trace/aaaa").headers.get("Content-Encoding"));
  EXPECT_EQ(call("GET", "/api/outrider/v1/trace/aaaa?format=xml").status, 400);
}

TEST_F(collector_api, empty_store_answers_empty_lists) {
  EXPECT_EQ(call("GET", "/api/v2/services").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/traces").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/autocompleteKeys").body, "[]");
  EXPECT_EQ(call("GET", "/api/v2/dependencies?endTs=1556604173000").body, "[]");
}

TEST_F(collector_api, zipkin_gzip_and_bad_bodies) {
  auto posted = call("POST", "/api/v2/spans", gzip(zipkin_spans),
                     {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(posted.status, 202);
  EXPECT_EQ(call("GET", "/api/v2/trace/5af7183fb1d4cf5f").status, 200);
  EXPECT_EQ(call("POST", "/api/v2/spans", "[{]", {{"Content-Type", "application/json"}}).status,
            400);
  EXPECT_EQ(call("POST", "/api/v2/spans", "garbage", {{"Content-Encoding", "gzip"}}).status, 400);
  EXPECT_EQ(
      call("POST", "/api/v2/spans", gzip(std::string(100000, ' ')), {{"Content-Encoding", "gzip"}})
          .status,
      413);
  EXPECT_EQ(call("POST", "/api/v2/spans", "[]").status, 202);
}

std::string otlp_body(int spans, bool with_bad_id = false) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("checkout");
  auto* ss = rs->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* sp = ss->add_spans();
    sp->set_trace_id(std::string(15, '\x01') + "\x02");
    sp->set_span_id(std::string(7, '\x00') + static_cast<char>(i + 1));
    sp->set_name("op");
    sp->set_start_time_unix_nano(1556604172000000000ULL);
    sp->set_end_time_unix_nano(1556604172100000000ULL);
  }
  if (with_bad_id) ss->add_spans()->set_trace_id("bad");
  return req.SerializeAsString();
}

TEST_F(collector_api, otlp_protobuf_and_partial_success) {
  auto ok = call("POST", "/v1/traces", otlp_body(2), {{"Content-Type", "application/x-protobuf"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.headers.get("Content-Type"), "application/x-protobuf");
  EXPECT_TRUE(ok.body.empty());  // an ExportTraceServiceResponse with nothing set

  auto partial =
      call("POST", "/v1/traces", otlp_body(1, true), {{"Content-Type", "application/x-protobuf"}});
  EXPECT_EQ(partial.status, 200);
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse resp;
  ASSERT_TRUE(resp.ParseFromString(partial.body));
  EXPECT_EQ(resp.partial_success().rejected_spans(), 1);
  EXPECT_FALSE(resp.partial_success().error_message().empty());

  auto trace = call("GET", "/api/v2/trace/01010101010101010101010101010102");
  EXPECT_EQ(trace.status, 200);
  EXPECT_NE(trace.body.find("\"serviceName\":\"checkout\""), std::string::npos);
}

TEST_F(collector_api, otlp_json_gzip_and_errors) {
  const std::string body =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
      R"("spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1556604172000000000",)"
      R"("endTimeUnixNano":"1556604172000001000"}]}]}]})";
  auto ok = call("POST", "/v1/traces", gzip(body),
                 {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "{}");
  auto bad =
      call("POST", "/v1/traces", "{\"resourceSpans\":5", {{"Content-Type", "application/json"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"code\":3"), std::string::npos) << bad.body;
  auto bad_proto =
      call("POST", "/v1/traces", "\xff\xff", {{"Content-Type", "application/x-protobuf"}});
  EXPECT_EQ(bad_proto.status, 400);
  EXPECT_EQ(call("POST", "/v1/traces", body, {{"Content-Type", "text/plain"}}).status, 415);
  EXPECT_EQ(call("POST", "/v1/traces", gzip(std::string(100000, ' ')),
                 {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}})
                .status,
            413);
}

TEST_F(collector_api, full_queue_answers_429_with_retry_after) {
  collector_->stop();  // the writer no longer drains: the queue fills
  collector_options co;
  co.max_queued_spans = 2;
  co.now = [] { return fixed_now; };
  collector c(*store_, nullptr, co);
  std::vector<status> done;
  ASSERT_TRUE(c.submit(std::vector<span>(2), [&](status s) { done.push_back(std::move(s)); }));
  auto full = c.submit(std::vector<span>(1), [](status) {});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, errc::resource_exhausted);
  http::router r;
  c.add_otlp_routes(r);
  http::request req;
  req.method = "POST";
  req.target = req.path = "/v1/traces";
  req.headers.add("Content-Type", "application/x-protobuf");
  req.body = otlp_body(1);
  http::response got;
  r.dispatch(std::move(req),
             http::responder([&](http::response&& resp) { got = std::move(resp); }));
  EXPECT_EQ(got.status, 429);
  EXPECT_EQ(got.headers.get("Retry-After"), "1");
  c.stop();  // never started: waiting batches fail with shutting_down
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error().code, errc::shutting_down);
}

}  // namespace
}  // namespace outrider::tracing
