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

}  // namespace
}  // namespace outrider::sidecar
