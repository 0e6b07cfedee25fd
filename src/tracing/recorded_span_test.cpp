#include "tracing/recorded_span.h"

#include <gtest/gtest.h>
#include <limits>

#include "tracing/codec.h"
#include "tracing/exporter.h"
#include "tracing/tracer.h"

namespace outrider::tracing {
namespace {

using namespace std::chrono_literals;

struct recording_sink final : span_sink {
  std::vector<span> spans;
  std::vector<recorded_span_ptr> recorded;
  void export_span(span&& s) override { spans.push_back(std::move(s)); }
  void export_recorded(recorded_span_ptr s) override { recorded.push_back(std::move(s)); }
};

tracer make_tracer(recording_sink& sink, simulated_clock& clk, xoshiro_random& rng) {
  tracer_options o;
  o.service_name = "orders";
  o.scope_name = "outrider-sidecar";
  o.scope_version = "1.2.3";
  o.resource_attributes.push_back({"outrider.component", attribute_value::of("sidecar")});
  o.resource_attributes.push_back(
      {"list", attribute_value{.kind = attribute_value::type::array,
                               .array = {attribute_value::of_int(1), attribute_value::of("x")}}});
  return tracer(o, borrow(sink), borrow(clk), &rng);
}

TEST(RecordedSpan, AttributeKeysHaveTheirSpelling) {
  EXPECT_EQ(attr_name(attr::http_request_method), "http.request.method");
  EXPECT_EQ(attr_name(attr::messaging_destination_name), "messaging.destination.name");
  EXPECT_EQ(attr_name(attr::url_scheme), "url.scheme");
  EXPECT_EQ(attr_name(attr::custom), "");
}

TEST(RecordedSpan, TextBeyondTheInlineBufferAndManyAttributesSurviveAMove) {
  recorded_span r;
  const std::string big(recorded_span::inline_text_bytes + 10, 'x');
  const auto a = r.store("short");
  const auto b = r.store(big);
  const auto c = r.store("after");
  for (int i = 0; i < 40; ++i) {
    recorded_span::attribute at;
    at.key = attr::server_port;
    at.kind = attribute_value::type::int64;
    at.number = i;
    r.add(at);
  }
  recorded_span moved = std::move(r);
  EXPECT_EQ(moved.text(a), "short");
  EXPECT_EQ(moved.text(b), big);
  EXPECT_EQ(moved.text(c), "after");
  ASSERT_EQ(moved.attribute_count(), 40U);
  EXPECT_EQ(moved.attribute_at(39).number, 39);
  EXPECT_EQ(moved.key_of(moved.attribute_at(0)), "server.port");
}

// The field-by-field encoder says what the message-object encoder says.
TEST(RecordedSpan, DirectProtobufDecodesLikeTheFullModel) {
  simulated_clock clk;
  xoshiro_random rng(7);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  span_context parent;
  parent.trace_id = id128{0x0102030405060708, 0x090a0b0c0d0e0f10};
  parent.span_id = 0x1112131415161718;
  parent.flags = trace_flag_sampled;
  parent.trace_state = "vendor=1";
  {
    auto s = t.start_span("publish orders", span_kind::producer, &parent);
    s.set(attr::messaging_system, "outrider");
    s.set(attr::messaging_message_body_size, std::int64_t{1234567890123});
    s.set(attr::outrider_probe, true);
    s.set("custom.ratio", 0.25);
    s.set("custom.negative", std::int64_t{-5});
    s.set("custom.text", std::string(1000, 'y'));
    s.set(attr::error_type, "");
    s.add_event("retry", {{"attempt", attribute_value::of_int(2)}});
    span_context other;
    other.trace_id = id128{9, 9};
    other.span_id = 8;
    s.add_link(other, {{"why", attribute_value::of("because")}});
    s.set_error("broker said no");
    clk.advance(3ms);
  }
  {
    auto root = t.start_span("GET /healthz", span_kind::server, nullptr);
    root.set(attr::http_response_status_code, std::int64_t{200});
  }
  ASSERT_EQ(sink.recorded.size(), 2U);
  std::vector<span> expected;
  for (const auto& r : sink.recorded) expected.push_back(r->to_span());

  auto direct = decode_otlp_protobuf(encode_otlp_protobuf(std::span(sink.recorded)));
  auto reference = decode_otlp_protobuf(encode_otlp_protobuf(expected));
  ASSERT_TRUE(direct);
  ASSERT_TRUE(reference);
  EXPECT_EQ(direct->rejected, 0U);
  ASSERT_EQ(direct->spans.size(), 2U);
  ASSERT_EQ(reference->spans.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(direct->spans[i].same_as(reference->spans[i])) << i;
  }
  const span& p = direct->spans[0];
  EXPECT_EQ(p.trace_id, parent.trace_id);
  EXPECT_EQ(p.parent_id, parent.span_id);
  EXPECT_EQ(p.trace_state, "vendor=1");
  EXPECT_EQ(p.name, "publish orders");
  EXPECT_EQ(p.kind, span_kind::producer);
  EXPECT_EQ(p.end_ns - p.start_ns, 3'000'000);
  EXPECT_EQ(p.service_name(), "orders");
  EXPECT_EQ(p.status.code, status_code::error);
  EXPECT_EQ(p.status.message, "broker said no");
  EXPECT_EQ(p.attribute("messaging.message.body.size")->int_value, 1234567890123);
  EXPECT_EQ(p.attribute("custom.negative")->int_value, -5);
  EXPECT_EQ(p.attribute("custom.ratio")->double_value, 0.25);
  EXPECT_TRUE(p.attribute("outrider.probe")->bool_value);
  EXPECT_EQ(p.attribute("custom.text")->string_value.size(), 1000U);
  ASSERT_EQ(p.events.size(), 1U);
  ASSERT_EQ(p.links.size(), 1U);
  EXPECT_EQ(p.links[0].span_id, 8U);
  ASSERT_TRUE(p.resource);
  EXPECT_EQ(p.resource->scope_version, "1.2.3");
  EXPECT_EQ(direct->spans[1].parent_id, 0U);
}

// The exporter writes each batch over the last one's bytes (write_otlp_protobuf
// into a reused buffer): the encoding is the same wherever it starts, what
// lies past its end is left alone, and spans without events or links (written
// field by field) decode like the full model.
TEST(RecordedSpan, ProtobufWrittenOverAReusedBufferIsTheSameEncoding) {
  simulated_clock clk;
  xoshiro_random rng(11);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  span_context parent;
  parent.trace_id = id128{0xfedcba9876543210, 0x0123456789abcdef};
  parent.span_id = 0x8000000000000001;
  parent.flags = trace_flag_sampled;
  parent.trace_state = "vendor=1";
  {
    auto s = t.start_span("POST /v1.0/publish/{pubsub}/{topic}", span_kind::server, &parent);
    s.set(attr::http_request_method, "POST");
    s.set(attr::server_port, std::int64_t{3500});
    s.set(attr::http_response_status_code, std::int64_t{503});
    s.set(attr::outrider_probe, false);
    s.set(attr::url_path, std::string(200, 'p'));  // a length of two varint bytes
    s.set("custom.key", "v");
    s.set("custom.ratio", -1.5);
    s.set(std::string(300, 'k'), std::int64_t{-1});  // a custom key longer than 127
    s.set_error("HTTP 503");
    clk.advance(2ms);
  }
  {
    auto s = t.start_span("publish orders", span_kind::producer, nullptr);
    s.set(attr::messaging_message_id, id128{1, 2});
    for (int i = 0; i < 20; ++i) s.set(attr::messaging_batch_message_count, std::int64_t{i});
  }
  t.start_span("", span_kind::internal, nullptr).end();
  ASSERT_EQ(sink.recorded.size(), 3U);
  std::vector<span> expected;
  for (const auto& r : sink.recorded) expected.push_back(r->to_span());
  const std::string encoded = encode_otlp_protobuf(std::span(sink.recorded));

  std::string reused(encoded.size() + 100, '\xee');  // longer, and not zeros
  EXPECT_EQ(write_otlp_protobuf(reused, 0, sink.recorded), encoded.size());
  EXPECT_EQ(reused.substr(0, encoded.size()), encoded);
  EXPECT_EQ(reused.substr(encoded.size()), std::string(100, '\xee'));

  std::string shorter = "head";  // grows from an offset
  EXPECT_EQ(write_otlp_protobuf(shorter, 2, sink.recorded), 2 + encoded.size());
  EXPECT_EQ(shorter, "he" + encoded);

  // The exporter's one pass (one resource, no events or links), into a buffer
  // too short, then reused: the same bytes.
  std::string buffer = "x";
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, sink.recorded), encoded);
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, sink.recorded), encoded);
  buffer.assign(buffer.size(), '\xee');
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, std::span(sink.recorded).subspan(1)),
            encode_otlp_protobuf(std::span(sink.recorded).subspan(1)));
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, {}),
            encode_otlp_protobuf(std::span<const recorded_span_ptr>()));

  auto direct = decode_otlp_protobuf(encoded);
  auto reference = decode_otlp_protobuf(encode_otlp_protobuf(expected));
  ASSERT_TRUE(direct);
  ASSERT_TRUE(reference);
  ASSERT_EQ(direct->spans.size(), 3U);
  ASSERT_EQ(reference->spans.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(direct->spans[i].same_as(reference->spans[i])) << i;
  }
  const span& server = direct->spans[0];
  EXPECT_EQ(server.trace_id, parent.trace_id);
  EXPECT_EQ(server.parent_id, parent.span_id);
  EXPECT_EQ(server.flags, trace_flag_sampled);
  EXPECT_EQ(server.trace_state, "vendor=1");
  EXPECT_EQ(server.attribute("server.port")->int_value, 3500);
  EXPECT_EQ(server.attribute("url.path")->string_value, std::string(200, 'p'));
  EXPECT_EQ(server.attribute(std::string(300, 'k'))->int_value, -1);
  EXPECT_EQ(server.attribute("custom.ratio")->double_value, -1.5);
  EXPECT_FALSE(server.attribute("outrider.probe")->bool_value);
  EXPECT_EQ(server.status.message, "HTTP 503");
  EXPECT_EQ(direct->spans[1].attributes.size(), 21U);

  // Two resources (the sidecar's probe tracer has its own): the two-pass
  // encoding, into a buffer that has to grow.
  recording_sink other_sink;
  tracer other({.service_name = "probes"}, borrow(other_sink), borrow(clk), &rng);
  other.start_span("GET /healthz", span_kind::client, nullptr).end();
  std::vector<recorded_span_ptr> mixed;
  mixed.push_back(std::move(sink.recorded.back()));
  sink.recorded.pop_back();
  mixed.push_back(std::move(other_sink.recorded.back()));
  std::string small = "y";
  EXPECT_EQ(encode_otlp_protobuf_into(small, mixed), encode_otlp_protobuf(mixed));
  sink.recorded.push_back(std::move(mixed.front()));

  // A span of 16 KiB or more has a three-byte length.
  t.start_span("big", span_kind::internal, nullptr).set("big", std::string(20000, 'b'));
  ASSERT_EQ(sink.recorded.size(), 4U);
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, sink.recorded),
            encode_otlp_protobuf(std::span(sink.recorded)));
}

// Every fixed key with string values around the lengths where a KeyValue's
// lengths stop fitting one byte, and int64 values of every varint width: the
// record encoders (exact, one pass over a reused buffer, from packed bytes)
// write what the full model's encoder writes.
TEST(RecordedSpan, FixedKeysEncodeAsTheFullModelAtEveryLength) {
  simulated_clock clk;
  xoshiro_random rng(13);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  const std::vector<std::vector<std::size_t>> lengths = {
      {0, 1, 50, 87, 88}, {89, 126, 127}, {128, 200}};
  const std::int64_t ints[] = {0,
                               1,
                               127,
                               128,
                               16383,
                               16384,
                               -1,
                               std::numeric_limits<std::int64_t>::max(),
                               std::numeric_limits<std::int64_t>::min()};
  for (std::size_t k = 0; k < static_cast<std::size_t>(attr::custom); ++k) {
    const auto key = static_cast<attr>(k);
    for (const auto& some : lengths) {
      auto s = t.start_span("span " + std::to_string(k), span_kind::server, nullptr);
      for (std::size_t n : some) s.set(key, std::string(n, static_cast<char>('a' + n % 26)));
      s.set("custom.key", "v");
      clk.advance(1ms);
    }
    auto s = t.start_span("ints", span_kind::internal, nullptr);
    for (std::int64_t v : ints) s.set(key, v);
  }
  std::vector<span> full;
  for (const auto& r : sink.recorded) {
    ASSERT_TRUE(r->packs());
    full.push_back(r->to_span());
  }
  const std::string reference = encode_otlp_protobuf(full);
  EXPECT_EQ(encode_otlp_protobuf(std::span(sink.recorded)), reference);
  std::string buffer(reference.size() + 64, '\xee');
  EXPECT_EQ(encode_otlp_protobuf_into(buffer, sink.recorded), reference);

  // The exporter's way: packed records, their fields written over a reused
  // buffer, the head in front.
  std::string packed;
  for (const auto& r : sink.recorded) {
    const std::size_t at = packed.size();
    packed.resize(at + r->packed_size());
    EXPECT_EQ(r->pack(packed.data() + at), packed.data() + packed.size());
  }
  packed.append(packed_slack, '\xee');  // write_packed_...'s contract
  std::string fields(16, '\xee');
  std::size_t end = 0;
  for (const char* p = packed.data(); p != packed.data() + packed.size() - packed_slack;) {
    end = write_packed_otlp_protobuf_span_field(fields, end, p);
  }
  std::string request;
  append_otlp_protobuf_head(request, sink.recorded.front()->resource.get(), end);
  request.append(fields, 0, end);
  EXPECT_EQ(request, reference);

  auto decoded = decode_otlp_protobuf(request);
  ASSERT_TRUE(decoded);
  ASSERT_EQ(decoded->spans.size(), full.size());
  for (std::size_t i = 0; i < full.size(); ++i)
    EXPECT_TRUE(decoded->spans[i].same_as(full[i])) << i;
  const span& ints_span = decoded->spans[3];
  ASSERT_EQ(ints_span.attributes.size(), std::size(ints));
  EXPECT_EQ(ints_span.attributes.back().value.int_value, std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(decoded->spans[2].attributes[0].value.string_value, std::string(128, 'y'));
}

// Spans of every shape the tracer records, for the encoder comparisons.
void record_examples(tracer& t, simulated_clock& clk) {
  span_context parent;
  parent.trace_id = id128{0x0102030405060708, 0x090a0b0c0d0e0f10};
  parent.span_id = 0x1112131415161718;
  parent.flags = trace_flag_sampled;
  parent.trace_state = "vendor=1,other=x";
  {
    auto s = t.start_span("Publish ORDERS \"quoted\"", span_kind::producer, &parent);
    s.set(attr::messaging_system, "outrider");
    s.set(attr::messaging_message_body_size, std::int64_t{1234567890123});
    s.set(attr::outrider_probe, true);
    s.set("custom.ratio", 0.25);
    s.set("custom.inf", std::numeric_limits<double>::infinity());
    s.set("custom.negative", std::int64_t{-5});
    s.set("custom.text", "line\nbreak \xc3\xa9 \x01");
    s.set("outrider.component", "overrides the resource's");
    s.set(attr::error_type, "");
    s.add_event("retry", {{"attempt", attribute_value::of_int(2)}});
    clk.advance(1ms);
    s.add_event("earlier?", {});
    span_context other;
    other.trace_id = id128{9, 9};
    other.span_id = 8;
    other.trace_state = "a=b";
    s.add_link(other, {{"why", attribute_value::of("because")}});
    s.set_error("broker said no");
    clk.advance(3ms);
  }
  {
    auto root = t.start_span("GET /healthz", span_kind::server, nullptr);
    root.set(attr::http_response_status_code, std::int64_t{200});
    clk.advance(std::chrono::nanoseconds(1500));
  }
  span_context short_id;  // a 64-bit trace id (from B3): Zipkin writes 16 hex digits
  short_id.trace_id = id128{0, 0x77};
  short_id.span_id = 0x66;
  short_id.flags = trace_flag_sampled;
  t.start_span("internal", span_kind::internal, &short_id).end();
  t.start_span("", span_kind::client, &short_id).end();
}

// Records encoded straight to OTLP/JSON and Zipkin JSON give the bytes the
// span encoders give for the same spans, and decode to the same spans.
TEST(RecordedSpan, DirectJsonEncodersWriteWhatTheSpanEncodersWrite) {
  simulated_clock clk;
  xoshiro_random rng(11);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  record_examples(t, clk);
  ASSERT_EQ(sink.recorded.size(), 4U);
  std::vector<span> expected;
  for (const auto& r : sink.recorded) expected.push_back(r->to_span());

  std::string otlp;
  append_otlp_json(otlp, sink.recorded);
  EXPECT_EQ(otlp, encode_otlp_json(expected));
  auto direct = decode_otlp_json(otlp);
  auto reference = decode_otlp_json(encode_otlp_json(expected));
  ASSERT_TRUE(direct) << direct.error().message;
  ASSERT_TRUE(reference);
  ASSERT_EQ(direct->spans.size(), 4U);
  ASSERT_EQ(reference->spans.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(direct->spans[i].same_as(reference->spans[i])) << i;
  }
  EXPECT_EQ(direct->spans[0].status.message, "broker said no");
  EXPECT_EQ(direct->spans[0].attribute("custom.text")->string_value, "line\nbreak \xc3\xa9 \x01");

  std::string zipkin;
  append_zipkin_json_list(zipkin, sink.recorded);
  EXPECT_EQ(zipkin, zipkin_json_list(expected));
  auto zdirect = decode_zipkin_json(zipkin);
  auto zreference = decode_zipkin_json(zipkin_json_list(expected));
  ASSERT_TRUE(zdirect) << zdirect.error().message;
  ASSERT_TRUE(zreference);
  ASSERT_EQ(zdirect->spans.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(zdirect->spans[i].same_as(zreference->spans[i])) << i;
  }
  const span& z = zdirect->spans[0];
  EXPECT_EQ(z.name, "publish orders \"quoted\"");  // Zipkin lower-cases names
  EXPECT_EQ(z.attribute("outrider.component")->string_value, "overrides the resource's");
  EXPECT_EQ(z.attribute("error")->string_value, "broker said no");
  EXPECT_EQ(zdirect->spans[2].trace_id, (id128{0, 0x77}));
}

// The exporter's batches mix records and full spans (an app's forwarded spans).
TEST(RecordedSpan, MixedBatchesCarryEverySpanInEachEncoding) {
  simulated_clock clk;
  xoshiro_random rng(5);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  record_examples(t, clk);
  std::vector<span> full;
  for (const auto& r : sink.recorded) full.push_back(r->to_span());
  full.resize(2);
  for (auto& s : full) s.span_id += 1000;
  for (auto p :
       {export_protocol::otlp_protobuf, export_protocol::otlp_json, export_protocol::zipkin_json}) {
    const std::string body = encode_batch(p, sink.recorded, full);
    auto decoded = p == export_protocol::otlp_protobuf ? decode_otlp_protobuf(body)
                   : p == export_protocol::otlp_json   ? decode_otlp_json(body)
                                                       : decode_zipkin_json(body);
    ASSERT_TRUE(decoded) << static_cast<int>(p) << ": " << decoded.error().message;
    EXPECT_EQ(decoded->spans.size(), 6U) << static_cast<int>(p);
  }
}

// The exporter's hand-off: a packed record unpacks, over a record that held
// another span, into one that encodes to the same bytes.
TEST(RecordedSpan, APackedRecordUnpacksToTheSameSpan) {
  simulated_clock clk;
  xoshiro_random rng(11);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  span_context parent;
  parent.trace_id = id128{7, 8};
  parent.span_id = 9;
  parent.flags = trace_flag_sampled;
  parent.trace_state = "vendor=1";
  {
    auto s = t.start_span("publish orders", span_kind::producer, &parent);
    s.set(attr::messaging_system, "outrider");
    s.set(attr::messaging_message_body_size, std::int64_t{1234});
    s.set("custom.ratio", 0.25);
    s.set_error("broker said no");
    clk.advance(3ms);
  }
  {
    auto other = t.start_span("GET /x", span_kind::server, nullptr);
    for (int i = 0; i < 12; ++i) other.set("k" + std::to_string(i), std::string(30, 'z'));
  }
  ASSERT_EQ(sink.recorded.size(), 2U);
  const recorded_span& packed = *sink.recorded[0];
  ASSERT_TRUE(packed.packs());
  std::string bytes(packed.packed_size(), '\0');
  EXPECT_EQ(packed.pack(bytes.data()), bytes.data() + bytes.size());
  recorded_span& target = *sink.recorded[1];  // more text and attributes than the packed one
  const std::string before = encode_otlp_protobuf(std::span(sink.recorded).subspan(0, 1));
  EXPECT_EQ(target.unpack(bytes.data()), bytes.data() + bytes.size());
  EXPECT_EQ(encode_otlp_protobuf(std::span(sink.recorded).subspan(1, 1)), before);
  // Records beyond the inline arrays, or with events or links, do not pack.
  auto big = t.start_span("big", span_kind::internal, nullptr);
  big.set("long", std::string(recorded_span::inline_text_bytes + 1, 'x'));
  big.end();
  auto evented = t.start_span("evented", span_kind::internal, nullptr);
  evented.add_event("e");
  evented.end();
  ASSERT_EQ(sink.recorded.size(), 4U);
  EXPECT_FALSE(sink.recorded[2]->packs());
  EXPECT_FALSE(sink.recorded[3]->packs());
}

// A span started with its string attributes records what setting them one by
// one records, also past the inline arrays (more text, more attributes).
TEST(RecordedSpan, StartSpanWithAttributesRecordsAsSettingThemOneByOne) {
  simulated_clock clk;
  xoshiro_random rng_a(21);
  xoshiro_random rng_b(21);
  recording_sink sink_a;
  recording_sink sink_b;
  auto a = make_tracer(sink_a, clk, rng_a);
  auto b = make_tracer(sink_b, clk, rng_b);
  const std::string long_text(recorded_span::inline_text_bytes - 40, 'l');
  {
    auto s = a.start_span("publish orders", span_kind::producer, nullptr,
                          {{attr::messaging_system, "outrider"},
                           {attr::messaging_destination_name, "orders"},
                           {attr::url_full, long_text},  // fills the inline text
                           {attr::url_path, "/beyond/the/inline/buffer"},
                           {attr::messaging_operation_type, ""}});
    for (int i = 0; i < 10; ++i) s.set(attr::server_port, std::int64_t{i});  // past 12 attributes
  }
  {
    auto s = b.start_span("publish orders", span_kind::producer, nullptr);
    s.set(attr::messaging_system, "outrider");
    s.set(attr::messaging_destination_name, "orders");
    s.set(attr::url_full, long_text);
    s.set(attr::url_path, "/beyond/the/inline/buffer");
    s.set(attr::messaging_operation_type, "");
    for (int i = 0; i < 10; ++i) s.set(attr::server_port, std::int64_t{i});
  }
  ASSERT_EQ(sink_a.recorded.size(), 1U);
  ASSERT_EQ(sink_b.recorded.size(), 1U);
  EXPECT_EQ(sink_a.recorded[0]->attribute_count(), 15U);
  EXPECT_EQ(encode_otlp_protobuf(sink_a.recorded), encode_otlp_protobuf(sink_b.recorded));
  // Unsampled: nothing recorded, the context still there.
  tracer_options off;
  off.sampling = 0;
  tracer none(off, borrow(sink_a), borrow(clk), &rng_a);
  auto s = none.start_span("x", span_kind::server, nullptr, {{attr::url_path, "/"}});
  EXPECT_FALSE(s.recording());
  EXPECT_TRUE(s.context().valid());
}

TEST(RecordedSpan, RecycledRecordsComeBackCleared) {
  simulated_clock clk;
  xoshiro_random rng(9);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  record_examples(t, clk);
  release_recorded_spans(sink.recorded);
  EXPECT_TRUE(sink.recorded.empty());
  for (int i = 0; i < 8; ++i) {
    auto r = acquire_recorded_span();
    EXPECT_EQ(r->attribute_count(), 0U);
    EXPECT_EQ(r->text(r->name), "");
    EXPECT_EQ(r->store("abc").offset, 0U);
    EXPECT_TRUE(r->events.empty());
    EXPECT_TRUE(r->links.empty());
    EXPECT_EQ(r->status, status_code::unset);
    EXPECT_EQ(r->parent_id, 0U);
  }
}

TEST(RecordedSpan, JobFiringIsOneCall) {
  simulated_clock clk;
  xoshiro_random rng(3);
  recording_sink sink;
  auto t = make_tracer(sink, clk, rng);
  const wall_time scheduled = clk.now();
  clk.advance(250ms);
  t.start_job_span("nightly-report", scheduled).end();
  ASSERT_EQ(sink.recorded.size(), 1U);
  const span s = sink.recorded[0]->to_span();
  EXPECT_EQ(s.name, "job nightly-report");
  EXPECT_EQ(s.kind, span_kind::consumer);
  EXPECT_EQ(s.attribute("outrider.job.name")->string_value, "nightly-report");
  EXPECT_EQ(s.attribute("outrider.job.lag_ms")->int_value, 250);
  EXPECT_EQ(s.attribute("outrider.job.attempt")->int_value, 1);
}

TEST(RecordedSpan, UnsampledSpansRecordNothing) {
  simulated_clock clk;
  xoshiro_random rng(3);
  recording_sink sink;
  tracer t({.service_name = "x", .sampling = 0.0}, borrow(sink), borrow(clk), &rng);
  {
    auto s = t.start_span("a", span_kind::server, nullptr);
    EXPECT_FALSE(s.recording());
    EXPECT_TRUE(s.context().valid());
    s.set(attr::http_route, "/x");
  }
  EXPECT_TRUE(sink.recorded.empty());
}

}  // namespace
}  // namespace outrider::tracing
