// Decoders and encoders against request bodies written from the specs: OTLP
// protobuf (built with the generated classes), OTLP/JSON (hand-written per the
// OTLP JSON rules), Zipkin v2 JSON and proto3, gzip.
#include "tracing/codec.h"

#include <gtest/gtest.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "zipkin/zipkin.pb.h"

namespace outrider::tracing {
namespace {

namespace otlp = opentelemetry::proto;

std::string bytes_of(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

constexpr std::string_view trace_hex = "5b8efff798038103d269b633813fc60c";
constexpr std::string_view span_hex = "eee19b7ec3c1b174";
constexpr std::string_view parent_hex = "eee19b7ec3c1b173";

otlp::collector::trace::v1::ExportTraceServiceRequest sample_request() {
  otlp::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("orders");
  auto* host = rs->mutable_resource()->add_attributes();
  host->set_key("host.name");
  host->mutable_value()->set_string_value("node-1");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("outrider");
  ss->mutable_scope()->set_version("0.1.0");
  auto* sp = ss->add_spans();
  sp->set_trace_id(bytes_of(trace_hex));
  sp->set_span_id(bytes_of(span_hex));
  sp->set_parent_span_id(bytes_of(parent_hex));
  sp->set_name("publish orders");
  sp->set_kind(otlp::trace::v1::Span::SPAN_KIND_PRODUCER);
  sp->set_start_time_unix_nano(1544712660000000000ULL);
  sp->set_end_time_unix_nano(1544712661000000000ULL);
  auto* a1 = sp->add_attributes();
  a1->set_key("messaging.system");
  a1->mutable_value()->set_string_value("outrider");
  auto* a2 = sp->add_attributes();
  a2->set_key("retry");
  a2->mutable_value()->set_int_value(3);
  auto* a3 = sp->add_attributes();
  a3->set_key("list");
  a3->mutable_value()->mutable_array_value()->add_values()->set_bool_value(true);
  a3->mutable_value()->mutable_array_value()->add_values()->set_double_value(1.5);
  auto* ev = sp->add_events();
  ev->set_name("enqueued");
  ev->set_time_unix_nano(1544712660500000000ULL);
  auto* ea = ev->add_attributes();
  ea->set_key("queue");
  ea->mutable_value()->set_string_value("orders");
  auto* link = sp->add_links();
  link->set_trace_id(bytes_of("0102030405060708090a0b0c0d0e0f10"));
  link->set_span_id(bytes_of("0102030405060708"));
  sp->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
  sp->mutable_status()->set_message("broker down");
  return req;
}

void expect_sample(const decoded_batch& b) {
  ASSERT_EQ(b.spans.size(), 1u);
  EXPECT_EQ(b.rejected, 0u);
  const span& s = b.spans[0];
  EXPECT_EQ(s.trace_id.to_hex(), trace_hex);
  EXPECT_EQ(to_hex16(s.span_id), span_hex);
  EXPECT_EQ(to_hex16(s.parent_id), parent_hex);
  EXPECT_EQ(s.name, "publish orders");
  EXPECT_EQ(s.kind, span_kind::producer);
  EXPECT_EQ(s.start_ns, 1544712660000000000LL);
  EXPECT_EQ(s.end_ns, 1544712661000000000LL);
  EXPECT_EQ(s.service_name(), "orders");
  EXPECT_EQ(s.remote_endpoint.service_name, "outrider");  // messaging.system on a PRODUCER span
  ASSERT_EQ(s.attributes.size(), 3u);
  EXPECT_EQ(s.attributes[1].value, attribute_value::of_int(3));
  EXPECT_EQ(s.attributes[2].value.to_text(), "[true,1.5]");
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].name, "enqueued");
  EXPECT_EQ(s.events[0].attributes[0].value.string_value, "orders");
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(s.links[0].trace_id.to_hex(), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(s.status.code, status_code::error);
  EXPECT_EQ(s.status.message, "broker down");
  ASSERT_NE(s.resource, nullptr);
  EXPECT_EQ(s.resource->scope_name, "outrider");
  EXPECT_EQ(s.resource->attributes.size(), 2u);
}

TEST(otlp_protobuf, decodes_every_field_of_the_model) {
  auto b = decode_otlp_protobuf(sample_request().SerializeAsString());
  ASSERT_TRUE(b) << b.error().message;
  expect_sample(*b);
}

TEST(otlp_protobuf, invalid_ids_are_rejected_as_partial_success) {
  auto req = sample_request();
  auto* bad = req.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  bad->set_trace_id("short");
  bad->set_span_id(bytes_of(span_hex));
  auto* zero = req.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  zero->set_trace_id(std::string(16, '\0'));
  zero->set_span_id(bytes_of(span_hex));
  auto b = decode_otlp_protobuf(req.SerializeAsString());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->spans.size(), 1u);
  EXPECT_EQ(b->rejected, 2u);
  EXPECT_FALSE(b->rejection_message.empty());
}

TEST(otlp_protobuf, garbage_is_a_malformed_request) {
  auto b = decode_otlp_protobuf("\xff\xff\xff\xff garbage");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::malformed_request);
}

TEST(otlp_protobuf, unknown_fields_are_ignored) {
  std::string body = sample_request().SerializeAsString();
  body += std::string("\xa8\x1f\x01", 3);  // field 500, varint 1: unknown to the schema
  auto b = decode_otlp_protobuf(body);
  ASSERT_TRUE(b) << b.error().message;
  expect_sample(*b);
}

TEST(otlp_protobuf, response_carries_partial_success) {
  otlp::collector::trace::v1::ExportTraceServiceResponse resp;
  ASSERT_TRUE(resp.ParseFromString(encode_otlp_response_protobuf(2, "bad ids")));
  EXPECT_EQ(resp.partial_success().rejected_spans(), 2);
  EXPECT_EQ(resp.partial_success().error_message(), "bad ids");
  EXPECT_TRUE(encode_otlp_response_protobuf(0, "").empty());
}

// The same request in OTLP/JSON: hex ids, integer enums, int64 as strings.
constexpr std::string_view sample_json = R"({
  "resourceSpans": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "orders"}},
      {"key": "host.name", "value": {"stringValue": "node-1"}}]},
    "scopeSpans": [{
      "scope": {"name": "outrider", "version": "0.1.0"},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "publish orders",
        "kind": 4,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
          {"key": "messaging.system", "value": {"stringValue": "outrider"}},
          {"key": "retry", "value": {"intValue": "3"}},
          {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": true}, {"doubleValue": 1.5}]}}}],
        "events": [{"timeUnixNano": "1544712660500000000", "name": "enqueued",
                    "attributes": [{"key": "queue", "value": {"stringValue": "orders"}}]}],
        "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708"}],
        "status": {"code": 2, "message": "broker down"},
        "someFutureField": {"ignored": true}
      }]
    }]
  }]
})";

TEST(otlp_json, decodes_the_spec_encoding) {
  auto b = decode_otlp_json(sample_json);
  ASSERT_TRUE(b) << b.error().message;
  expect_sample(*b);
}

TEST(otlp_json, accepts_numbers_for_int64_and_enum_names) {
  auto b = decode_otlp_json(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
      "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
      "kind":"SPAN_KIND_SERVER","startTimeUnixNano":1000,"endTimeUnixNano":2000,
      "attributes":[{"key":"n","value":{"intValue":7}}]}]}]}]})");
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_EQ(b->spans.size(), 1u);
  EXPECT_EQ(b->spans[0].kind, span_kind::server);
  EXPECT_EQ(b->spans[0].end_ns, 2000);
  EXPECT_EQ(b->spans[0].service_name(), "unknown_service");
  EXPECT_EQ(b->spans[0].attributes[0].value, attribute_value::of_int(7));
}

TEST(otlp_json, bad_input_is_an_error_never_a_crash) {
  for (std::string_view body :
       {"", "[", "[]", "{\"resourceSpans\":[1]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":5}]}]}]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"startTimeUnixNano\":\"x\"}]}]}]}"}) {
    auto b = decode_otlp_json(body);
    EXPECT_FALSE(b) << body;
  }
  auto empty = decode_otlp_json("{}");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->spans.empty());
}

TEST(otlp_json, wrong_length_ids_are_rejected_spans) {
  auto b = decode_otlp_json(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":"eee19b7ec3c1b174"},
         {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]})");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->spans.size(), 1u);
  EXPECT_EQ(b->rejected, 1u);
}

TEST(otlp_json, deep_nesting_is_refused) {
  std::string v = "{\"stringValue\":\"x\"}";
  for (int i = 0; i < 40; ++i) v = "{\"arrayValue\":{\"values\":[" + v + "]}}";
  auto b = decode_otlp_json(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"k","value":)" +
      v + "}]}]}]}]}");
  EXPECT_FALSE(b);
}

// From the Zipkin v2 API definition (zipkin2-api.yaml) example shapes.
constexpr std::string_view zipkin_sample = R"([{
  "traceId": "5af7183fb1d4cf5f",
  "parentId": "6b221d5bc9e6496c",
  "id": "352bff9a74ca9ad2",
  "kind": "CLIENT",
  "name": "get /api",
  "timestamp": 1556604172355737,
  "duration": 1431,
  "localEndpoint": {"serviceName": "Backend", "ipv4": "192.168.99.1", "port": 3306},
  "remoteEndpoint": {"serviceName": "mysql", "ipv6": "::1"},
  "annotations": [{"timestamp": 1556604172355800, "value": "wire send"}],
  "tags": {"sql.query": "select 1", "rows": 3, "cached": false},
  "shared": true
}])";

TEST(zipkin_json, decodes_a_span) {
  auto b = decode_zipkin_json(zipkin_sample);
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_EQ(b->spans.size(), 1u);
  const auto& s = b->spans[0];
  EXPECT_EQ(s.trace_id, (id128{0, 0x5af7183fb1d4cf5fULL}));
  EXPECT_EQ(s.parent_id, 0x6b221d5bc9e6496cULL);
  EXPECT_EQ(s.kind, span_kind::client);
  EXPECT_EQ(s.start_ns, 1556604172355737000LL);
  EXPECT_EQ(s.duration_ns(), 1431000);
  EXPECT_EQ(s.local_endpoint.service_name, "Backend");
  EXPECT_EQ(s.local_endpoint.port, 3306);
  EXPECT_EQ(s.remote_endpoint.ipv6, "::1");
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].name, "wire send");
  ASSERT_NE(s.attribute("rows"), nullptr);
  EXPECT_EQ(s.attribute("rows")->string_value, "3");
  EXPECT_EQ(s.attribute("cached")->string_value, "false");
  EXPECT_TRUE(s.shared);
}

TEST(zipkin_json, encodes_back_as_zipkin_does) {
  auto b = decode_zipkin_json(zipkin_sample);
  ASSERT_TRUE(b);
  EXPECT_EQ(
      zipkin_json_list(b->spans),
      R"([{"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"CLIENT",)"
      R"("name":"get /api","timestamp":1556604172355737,"duration":1431,)"
      R"("localEndpoint":{"serviceName":"backend","ipv4":"192.168.99.1","port":3306},)"
      R"("remoteEndpoint":{"serviceName":"mysql","ipv6":"::1"},)"
      R"("annotations":[{"timestamp":1556604172355800,"value":"wire send"}],)"
      R"("tags":{"cached":"false","rows":"3","sql.query":"select 1"},"shared":true}])");
}

TEST(zipkin_json, invalid_spans_fail_the_request) {
  for (std::string_view body : {"{}", "[{}]", R"([{"traceId":"xyz","id":"1"}])",
                                R"([{"traceId":"1","id":"12345678901234567"}])",
                                R"([{"traceId":"1","id":"2","kind":"SIDEWAYS"}])",
                                R"([{"traceId":"1","id":"2","timestamp":-5}])",
                                R"([{"traceId":"1","id":"2","tags":{"a":null}}])",
                                R"([{"traceId":"1","id":"2","localEndpoint":{"port":70000}}])"}) {
    auto b = decode_zipkin_json(body);
    EXPECT_FALSE(b) << body;
    if (!b) {
      EXPECT_EQ(b.error().code, errc::malformed_request);
    }
  }
}

TEST(zipkin_json, otlp_spans_map_status_scope_and_resource_to_tags) {
  auto b = decode_otlp_protobuf(sample_request().SerializeAsString());
  ASSERT_TRUE(b);
  std::string out;
  append_zipkin_json(out, b->spans[0]);
  EXPECT_NE(out.find(R"("kind":"PRODUCER")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("remoteEndpoint":{"serviceName":"outrider"})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("error":"broker down")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("otel.status_code":"ERROR")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("host.name":"node-1")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("otel.scope.name":"outrider")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("annotations":[{"timestamp":1544712660500000,"value":"enqueued"}])"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("service.name"), std::string::npos) << out;
}

TEST(native_json, keeps_links_events_status_and_resource) {
  auto b = decode_otlp_protobuf(sample_request().SerializeAsString());
  ASSERT_TRUE(b);
  std::string out;
  append_native_json(out, b->spans[0]);
  EXPECT_NE(
      out.find(
          R"("links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708")"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("status":{"code":"ERROR","message":"broker down"})"), std::string::npos)
      << out;
  EXPECT_NE(out.find(R"({"key":"retry","value":{"intValue":"3"}})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("resource":{"attributes":[{"key":"service.name")"), std::string::npos)
      << out;
  // The native JSON is valid OTLP/JSON attribute shape: decode a span wrapped in the envelope.
  auto again = decode_otlp_json(R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + out + "]}]}]}");
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->spans.size(), 1u);
  EXPECT_EQ(again->spans[0].attributes, b->spans[0].attributes);
  EXPECT_EQ(again->spans[0].links, b->spans[0].links);
  EXPECT_EQ(again->spans[0].events, b->spans[0].events);
}

TEST(zipkin_proto, decodes_list_of_spans) {
  zipkin::proto3::ListOfSpans list;
  auto* s = list.add_spans();
  s->set_trace_id(bytes_of(trace_hex));
  s->set_id(bytes_of(span_hex));
  s->set_kind(zipkin::proto3::Span::SERVER);
  s->set_name("get");
  s->set_timestamp(1556604172355737ULL);
  s->set_duration(10);
  s->mutable_local_endpoint()->set_service_name("frontend");
  s->mutable_local_endpoint()->set_ipv4(std::string("\x7f\x00\x00\x01", 4));
  (*s->mutable_tags())["http.path"] = "/api";
  s->add_annotations()->set_value("ws");
  auto b = decode_zipkin_proto(list.SerializeAsString());
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_EQ(b->spans.size(), 1u);
  EXPECT_EQ(b->spans[0].trace_id.to_hex(), trace_hex);
  EXPECT_EQ(b->spans[0].local_endpoint.ipv4, "127.0.0.1");
  EXPECT_EQ(b->spans[0].kind, span_kind::server);
  EXPECT_EQ(b->spans[0].attribute("http.path")->string_value, "/api");

  s->set_id("123");
  EXPECT_FALSE(decode_zipkin_proto(list.SerializeAsString()));
  EXPECT_FALSE(decode_zipkin_proto("\x0a\xff"));
}

TEST(gzip, round_trip_and_limits) {
  const std::string body(100000, 'x');
  const std::string packed = gzip(body);
  EXPECT_LT(packed.size(), body.size());
  auto back = gunzip(packed, body.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, body);
  auto too_big = gunzip(packed, body.size() - 1);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, errc::body_too_large);
  EXPECT_FALSE(gunzip("not gzip", 1000));
  EXPECT_FALSE(gunzip(packed.substr(0, packed.size() / 2), body.size()));
}

TEST(ids, hex_parsing) {
  EXPECT_EQ(parse_trace_id("1"), (id128{0, 1}));
  EXPECT_EQ(trace_id_hex(id128{0, 1}), "0000000000000001");
  EXPECT_EQ(trace_id_hex(id128{1, 2}), "00000000000000010000000000000002");
  EXPECT_FALSE(parse_trace_id(std::string(33, 'a')));
  EXPECT_FALSE(parse_hex64("g"));
  EXPECT_FALSE(parse_hex64(""));
}

}  // namespace
}  // namespace outrider::tracing
