#include "sidecar/request_tracing.h"

#include <gtest/gtest.h>

#include "tracing/trace_context.h"

namespace outrider::sidecar {
namespace {

struct collecting_sink final : tracing::span_sink {
  std::vector<tracing::span> spans;
  void export_span(tracing::span&& s) override { spans.push_back(std::move(s)); }
};

constexpr std::string_view caller_traceparent =
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

http::request publish_request() {
  http::request req;
  req.method = "POST";
  req.target = req.path = "/v1.0/publish/pubsub/orders";
  req.remote_address = "127.0.0.1:40000";
  req.headers.set("traceparent", caller_traceparent);
  req.headers.set("tracestate", "vendor=1");
  return req;
}

// A publish passes no request headers on: its SERVER span leaves them as they
// came (the PRODUCER span takes its parent from the scope), and only the
// publish paths are such.
TEST(RequestTracing, ServerSpanOfAPublishLeavesTheHeadersAsTheyCame) {
  simulated_clock clk;
  xoshiro_random rng(5);
  collecting_sink sink;
  tracing::tracer t({.service_name = "orders"}, tracing::borrow(sink), tracing::borrow(clk), &rng);
  auto req = publish_request();
  req.headers.set("b3", "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1");
  ASSERT_TRUE(passes_no_headers_on(req.path));
  auto server = start_server_span(t, req, "127.0.0.1", 3500, true, !passes_no_headers_on(req.path));
  EXPECT_EQ(server.context().trace_id.to_hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(*req.headers.get("traceparent"), caller_traceparent);
  EXPECT_EQ(*req.headers.get("tracestate"), "vendor=1");
  EXPECT_EQ(*req.headers.get("b3"), "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1");
  const server_span_scope scope(server.context());
  auto producer = start_producer_span(t, req.headers, "embedded", "pubsub", "orders");
  producer.end();
  server.end();
  ASSERT_EQ(sink.spans.size(), 2U);
  EXPECT_EQ(sink.spans[0].parent_id, sink.spans[1].span_id);

  EXPECT_TRUE(passes_no_headers_on("/v1.0-alpha1/publish/bulk/pubsub/orders"));
  EXPECT_FALSE(passes_no_headers_on("/v1.0/invoke/app/method/x"));
  EXPECT_FALSE(passes_no_headers_on("/v1.0/bindings/out"));
  EXPECT_FALSE(passes_no_headers_on("/v1.0/publishing"));
}

// The PRODUCER span is the SERVER span's child whether its parent comes from
// the scope (the sidecar's handlers) or from the headers inject_context wrote.
TEST(RequestTracing, ProducerSpanIsTheServerSpansChildFromScopeOrHeaders) {
  simulated_clock clk;
  xoshiro_random rng(3);
  collecting_sink sink;
  tracing::tracer t({.service_name = "orders"}, tracing::borrow(sink), tracing::borrow(clk), &rng);
  for (const bool scoped : {true, false}) {
    SCOPED_TRACE(scoped);
    sink.spans.clear();
    auto req = publish_request();
    auto server = start_server_span(t, req, "127.0.0.1", 3500, false);
    const tracing::span_context context = server.context();
    std::optional<server_span_scope> scope;
    if (scoped) scope.emplace(context);
    EXPECT_EQ(server_span_scope::current(), scoped ? &context : nullptr);
    auto producer = start_producer_span(t, req.headers, "embedded", "pubsub", "orders");
    producer.end();
    server.end();
    ASSERT_EQ(sink.spans.size(), 2U);
    const auto& p = sink.spans[0];
    const auto& s = sink.spans[1];
    EXPECT_EQ(s.kind, tracing::span_kind::server);
    EXPECT_EQ(s.parent_id, 0xb7ad6b7169203331U);
    EXPECT_EQ(p.kind, tracing::span_kind::producer);
    EXPECT_EQ(p.name, "publish orders");
    EXPECT_EQ(p.trace_id, s.trace_id);
    EXPECT_EQ(p.parent_id, s.span_id);
    EXPECT_EQ(p.trace_state, "vendor=1");
    EXPECT_EQ(producer.tracestate(), "vendor=1");
    EXPECT_TRUE(producer.context().sampled());
  }
  EXPECT_EQ(server_span_scope::current(), nullptr);
}

// start_server_span reads the caller's trace headers and replaces them in one
// pass over the fields: the same headers as inject_context gives (B3 ones
// removed, b3 written when asked, a tracestate the span does not carry on
// removed), for each mix of headers.
TEST(RequestTracing, ServerSpanReplacesTheTraceHeadersAsInjectContextDoes) {
  simulated_clock clk;
  collecting_sink sink;
  using fields_list = std::vector<std::pair<std::string, std::string>>;
  const std::vector<fields_list> cases = {
      {},
      {{"traceparent", std::string(caller_traceparent)}, {"tracestate", "vendor=1"}},
      {{"TraceParent", std::string(caller_traceparent)},
       {"b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"},
       {"X-B3-ParentSpanId", "05e3ac9a4f6e3b90"}},
      {{"b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"}, {"tracestate", "a=b"}},
      {{"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"},
       {"x-b3-spanid", "e457b5a2e4d86bd1"},
       {"x-b3-sampled", "1"},
       {"x-b3-flags", "0"},
       {"content-type", "application/json"}},
      {{"x-b3-parentspanid", "05e3ac9a4f6e3b90"}, {"Tracestate", ""}},
      {{"traceparent", "00-not-a-context"}, {"tracestate", "x=y"}, {"tracestate", "z=w"}},
      // Of a traceparent's size (rewritten in place) but invalid, unsampled, or twice.
      {{"traceparent", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
      {{"content-type", "text/plain"},
       {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}},
      {{"traceparent", std::string(caller_traceparent)},
       {"content-type", "text/plain"},
       {"TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
      {{"traceparent", ""}, {"traceparent", std::string(caller_traceparent)}},
  };
  const auto texts = [](const http::fields& f) {
    fields_list out;
    for (const auto& field : f) out.emplace_back(field.name, field.value);
    return out;
  };
  for (const bool emit_b3 : {false, true}) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE(testing::Message() << "case " << i << " emit_b3 " << emit_b3);
      xoshiro_random rng_a(5);
      xoshiro_random rng_b(5);
      tracing::tracer a({.service_name = "orders"}, tracing::borrow(sink), tracing::borrow(clk),
                        &rng_a);
      tracing::tracer b({.service_name = "orders"}, tracing::borrow(sink), tracing::borrow(clk),
                        &rng_b);
      auto req = publish_request();
      req.headers = http::fields{};
      for (const auto& [n, v] : cases[i]) req.headers.add(n, v);
      auto expected_req = req;
      auto span = start_server_span(a, req, "127.0.0.1", 3500, emit_b3);
      // The reference: the same span (same ids) injected by inject_context.
      std::string storage;
      const auto parent =
          tracing::extract_context(tracing::carrier_from_fields(expected_req.headers, storage));
      auto same = b.start_span("x", tracing::span_kind::server, parent ? &*parent : nullptr);
      ASSERT_EQ(same.context().span_id, span.context().span_id);
      inject_context(expected_req.headers, same, emit_b3);
      EXPECT_EQ(texts(req.headers), texts(expected_req.headers));
      EXPECT_EQ(req.headers.get("traceparent"), span.traceparent());
      EXPECT_EQ(req.headers.contains("x-b3-parentspanid"), false);
    }
  }
}

// The scope wins over the headers (the handler sees the context the SERVER
// span injected; the scope carries the same without parsing), and scopes nest.
TEST(RequestTracing, ServerSpanScopesNestAndWinOverHeaders) {
  simulated_clock clk;
  xoshiro_random rng(4);
  collecting_sink sink;
  tracing::tracer t({}, tracing::borrow(sink), tracing::borrow(clk), &rng);
  tracing::span_context outer;
  outer.trace_id = id128{1, 2};
  outer.span_id = 3;
  outer.flags = tracing::trace_flag_sampled;
  tracing::span_context inner = outer;
  inner.span_id = 4;
  http::fields headers;
  headers.set("traceparent", caller_traceparent);
  {
    const server_span_scope a(outer);
    {
      const server_span_scope b(inner);
      EXPECT_EQ(server_span_scope::current(), &inner);
      start_producer_span(t, headers, "embedded", "p", "t").end();
    }
    EXPECT_EQ(server_span_scope::current(), &outer);
    start_producer_span(t, headers, "embedded", "p", "t").end();
  }
  EXPECT_EQ(server_span_scope::current(), nullptr);
  start_producer_span(t, headers, "embedded", "p", "t").end();
  ASSERT_EQ(sink.spans.size(), 3U);
  EXPECT_EQ(sink.spans[0].parent_id, 4U);
  EXPECT_EQ(sink.spans[1].parent_id, 3U);
  EXPECT_EQ(sink.spans[1].trace_id, (id128{1, 2}));
  EXPECT_EQ(sink.spans[2].parent_id, 0xb7ad6b7169203331U);
}

// ending_on_response ends the SERVER span just before the answer is
// delivered, with the status answered: 204 sent, 500 (ERROR) for a responder
// dropped unsent; each span once, ended when the client's answer goes out.
TEST(RequestTracing, ResponderEndsTheServerSpanBeforeItAnswers) {
  simulated_clock clk;
  xoshiro_random rng(5);
  collecting_sink sink;
  tracing::tracer t({.service_name = "orders"}, tracing::borrow(sink), tracing::borrow(clk), &rng);
  std::vector<int> answered;
  std::vector<std::size_t> spans_at_answer;
  auto client = [&](http::response&& resp) {
    answered.push_back(resp.status);
    spans_at_answer.push_back(sink.spans.size());
  };
  {
    auto req = publish_request();
    auto r = ending_on_response(start_server_span(t, req, "127.0.0.1", 3500, false),
                                http::responder(client));
    EXPECT_TRUE(sink.spans.empty());
    r.send(http::response::no_content());
    r.send(http::response::no_content());
    auto req2 = publish_request();
    auto dropped = ending_on_response(start_server_span(t, req2, "127.0.0.1", 3500, false),
                                      http::responder(client));
  }
  EXPECT_EQ(answered, (std::vector<int>{204, 500}));
  EXPECT_EQ(spans_at_answer, (std::vector<std::size_t>{1, 2}));
  ASSERT_EQ(sink.spans.size(), 2U);
  EXPECT_EQ(sink.spans[0].status.code, tracing::status_code::unset);
  EXPECT_EQ(sink.spans[1].status.code, tracing::status_code::error);
  EXPECT_EQ(sink.spans[1].status.message, "HTTP 500");
  for (const auto& s : sink.spans) {
    EXPECT_EQ(s.kind, tracing::span_kind::server);
    EXPECT_EQ(s.parent_id, 0xb7ad6b7169203331U);
  }
}

}  // namespace
}  // namespace outrider::sidecar
