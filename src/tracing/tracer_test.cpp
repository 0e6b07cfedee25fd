#include "tracing/tracer.h"

#include <gtest/gtest.h>

#include "tracing/codec.h"

namespace outrider::tracing {
namespace {

using namespace std::chrono_literals;

struct collecting_sink final : span_sink {
  std::vector<span> spans;
  void export_span(span&& s) override { spans.push_back(std::move(s)); }
};

TEST(Tracer, RootAndChildSpansWithClockTimes) {
  simulated_clock clk;
  xoshiro_random rng(42);
  collecting_sink sink;
  tracer t({.service_name = "orders"}, borrow(sink), borrow(clk), &rng);
  auto root = t.start_span("POST /orders", span_kind::server, nullptr);
  ASSERT_TRUE(root.recording());
  EXPECT_TRUE(root.context().valid());
  EXPECT_TRUE(root.context().sampled());
  clk.advance(5ms);
  auto child = t.start_span("publish orders", span_kind::producer, &root.context());
  child.set("messaging.system", "outrider");
  child.set("messaging.message.body.size", std::int64_t{12});
  child.set_error("boom");
  clk.advance(1ms);
  child.end();
  root.end();
  ASSERT_EQ(sink.spans.size(), 2U);
  const span& c = sink.spans[0];
  const span& r = sink.spans[1];
  EXPECT_EQ(r.parent_id, 0U);
  EXPECT_EQ(c.parent_id, r.span_id);
  EXPECT_EQ(c.trace_id, r.trace_id);
  EXPECT_EQ(c.kind, span_kind::producer);
  EXPECT_EQ(c.end_ns - c.start_ns, 1'000'000);
  EXPECT_EQ(r.end_ns - r.start_ns, 6'000'000);
  EXPECT_EQ(c.status.code, status_code::error);
  EXPECT_EQ(c.service_name(), "orders");
  ASSERT_TRUE(c.resource);
  EXPECT_EQ(c.resource->attributes[0].key, "service.name");
  EXPECT_EQ(c.attribute("messaging.system")->string_value, "outrider");
}

TEST(Tracer, EndIsIdempotentAndDestructorEnds) {
  simulated_clock clk;
  collecting_sink sink;
  tracer t({}, borrow(sink), borrow(clk));
  {
    auto s = t.start_span("a", span_kind::internal, nullptr);
    s.end();
    s.end();
    auto u = t.start_span("b", span_kind::internal, nullptr);
  }
  EXPECT_EQ(sink.spans.size(), 2U);
}

TEST(Tracer, IdAttributesCustomKeysAndTraceparentInto) {
  simulated_clock clk;
  xoshiro_random rng(5);
  collecting_sink sink;
  tracer t({}, borrow(sink), borrow(clk), &rng);
  auto s = t.start_span("publish orders", span_kind::producer, nullptr);
  const id128 id{0x0123456789abcdef, 0xfedcba9876543210};
  s.set(attr::messaging_message_id, id);
  s.set("app.flag", true);
  s.set("app.note", "kept after a custom key");
  std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  s.traceparent_into(tp);
  EXPECT_EQ(tp, s.traceparent());
  std::string empty;
  s.traceparent_into(empty);
  EXPECT_EQ(empty, s.traceparent());
  s.end();
  ASSERT_EQ(sink.spans.size(), 1U);
  const span& out = sink.spans[0];
  EXPECT_EQ(out.attribute("messaging.message.id")->string_value, id.to_string());
  EXPECT_TRUE(out.attribute("app.flag")->bool_value);
  EXPECT_EQ(out.attribute("app.note")->string_value, "kept after a custom key");
  // The id's text is id128::to_string()'s, whatever the id.
  std::vector<id128> ids = {id128{}, id128{~0ULL, ~0ULL}, id128{1ULL << 63, 1}};
  for (int i = 0; i < 50; ++i) ids.push_back(id128::random(rng));
  for (const auto& x : ids) {
    auto e = t.start_span("e", span_kind::internal, nullptr);
    e.set(attr::messaging_message_id, x);
    e.end();
    EXPECT_EQ(sink.spans.back().attribute("messaging.message.id")->string_value, x.to_string());
  }
}

TEST(Tracer, ParentBasedSampling) {
  simulated_clock clk;
  collecting_sink sink;
  tracer never({.sampling = 0.0}, borrow(sink), borrow(clk));
  auto root = never.start_span("a", span_kind::server, nullptr);
  EXPECT_FALSE(root.recording());
  EXPECT_FALSE(root.context().sampled());
  EXPECT_TRUE(root.context().valid());  // still propagated, with sampled = 0
  span_context sampled_parent;
  sampled_parent.trace_id = id128{1, 2};
  sampled_parent.span_id = 3;
  sampled_parent.flags = trace_flag_sampled;
  auto child = never.start_span("b", span_kind::server, &sampled_parent);
  EXPECT_TRUE(child.recording());  // follows the parent
  tracer always({.sampling = 1.0}, borrow(sink), borrow(clk));
  span_context unsampled_parent = sampled_parent;
  unsampled_parent.flags = 0;
  EXPECT_FALSE(always.start_span("c", span_kind::server, &unsampled_parent).recording());
}

TEST(Tracer, RatioSamplingIsDeterministicPerTraceIdAndRoughlyTheRatio) {
  EXPECT_TRUE(should_sample(0.5, nullptr, id128{0, 0x1000}));
  EXPECT_FALSE(should_sample(0.5, nullptr, id128{0, 0xf000000000000000ULL}));
  xoshiro_random rng(7);
  int sampled = 0;
  constexpr int n = 10000;
  for (int i = 0; i < n; ++i) sampled += should_sample(0.25, nullptr, id128::random(rng)) ? 1 : 0;
  EXPECT_GT(sampled, n / 5);
  EXPECT_LT(sampled, n * 3 / 10);
}

TEST(Tracer, LinksAndExplicitTimes) {
  simulated_clock clk;
  collecting_sink sink;
  tracer t({}, borrow(sink), borrow(clk));
  span_context creation;
  creation.trace_id = id128{9, 9};
  creation.span_id = 4;
  creation.flags = trace_flag_sampled;
  const wall_time start = clk.now() - 1h;
  auto s = t.start_span(span_start{"deliver", span_kind::consumer, nullptr, start});
  s.add_link(creation, {{"messaging.operation.type", attribute_value::of("create")}});
  s.end(start + 2s);
  ASSERT_EQ(sink.spans.size(), 1U);
  ASSERT_EQ(sink.spans[0].links.size(), 1U);
  EXPECT_EQ(sink.spans[0].links[0].span_id, 4U);
  EXPECT_EQ(sink.spans[0].duration_ns(), 2'000'000'000);
  EXPECT_NE(sink.spans[0].trace_id, creation.trace_id);  // a link, not a parent
}

TEST(OtlpEncoding, RoundTripsThroughTheDecoders) {
  simulated_clock clk;
  collecting_sink sink;
  tracer t({.service_name = "a", .resource_attributes = {{"k", attribute_value::of("v")}}},
           borrow(sink), borrow(clk));
  auto root = t.start_span("root", span_kind::server, nullptr);
  auto child = t.start_span("child", span_kind::client, &root.context());
  child.set("n", std::int64_t{5});
  child.set("b", true);
  child.set("d", 1.5);
  child.add_event("retry", {{"attempt", attribute_value::of_int(2)}});
  child.set_error("bad");
  child.end();
  root.end();
  span other;  // a span of another service, without a resource
  other.trace_id = id128{1, 1};
  other.span_id = 77;
  other.local_endpoint.service_name = "b";
  sink.spans.push_back(other);
  for (bool json : {false, true}) {
    auto decoded = json ? decode_otlp_json(encode_otlp_json(sink.spans))
                        : decode_otlp_protobuf(encode_otlp_protobuf(sink.spans));
    ASSERT_TRUE(decoded);
    ASSERT_EQ(decoded->spans.size(), 3U);
    const span& c = decoded->spans[0];
    EXPECT_TRUE(c.same_as(sink.spans[0]) || c.name == "child");
    EXPECT_EQ(c.parent_id, sink.spans[1].span_id);
    EXPECT_EQ(c.attribute("n")->int_value, 5);
    EXPECT_EQ(c.attribute("d")->double_value, 1.5);
    EXPECT_EQ(c.events.at(0).name, "retry");
    EXPECT_EQ(c.status.code, status_code::error);
    EXPECT_EQ(c.status.message, "bad");
    EXPECT_EQ(c.service_name(), "a");
    EXPECT_EQ(decoded->spans[2].service_name(), "b");
    EXPECT_EQ(c.resource->attributes.size(), 2U);
  }
}

}  // namespace
}  // namespace outrider::tracing
