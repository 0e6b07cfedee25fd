#include "sidecar/cloud_event.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/time_format.h"

namespace outrider::sidecar {
namespace {

namespace json = boost::json;
using pairs = std::vector<std::pair<std::string, std::string>>;

wall_time fixed_now() {
  return *parse_rfc3339("2026-03-01T12:00:00Z");
}

envelope_input input(std::string content_type, std::string body) {
  envelope_input in;
  in.app_id = "orders";
  in.pubsub_name = "pubsub";
  in.topic = "reservations";
  in.content_type = std::move(content_type);
  in.body = std::move(body);
  in.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  in.message_id = id128{7, 9};
  in.now = fixed_now();
  return in;
}

json::object body_of(const backends::message& m) {
  return json::parse(m.body).as_object();
}

TEST(cloud_event, json_body_is_wrapped_in_an_envelope) {
  auto m = build_message(input("application/json", R"({"order":42})"), {});
  ASSERT_TRUE(m.ok());
  auto ce = body_of(*m);
  EXPECT_EQ(ce["id"], json::value(id128({7, 9}).to_string()));
  EXPECT_EQ(ce["source"], "orders");
  EXPECT_EQ(ce["type"], "com.dapr.event.sent");
  EXPECT_EQ(ce["specversion"], "1.0");
  EXPECT_EQ(ce["datacontenttype"], "application/json");
  EXPECT_EQ(ce["data"].as_object()["order"], 42);
  EXPECT_EQ(ce["topic"], "reservations");
  EXPECT_EQ(ce["pubsubname"], "pubsub");
  EXPECT_EQ(ce["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(*backends::find_header(m->headers, "content-type"), "application/cloudevents+json");
  EXPECT_NE(backends::find_header(m->headers, "traceparent"), nullptr);
  EXPECT_EQ(m->id, (id128{7, 9}));
}

// A JSON body travels in `data` as the app wrote it (checked, not re-serialized:
// 1.50 stays 1.50, spacing stays), whatever JSON value it is; a cloudevent.data
// override still replaces it.
TEST(cloud_event, json_body_goes_into_data_as_written) {
  const std::string body = R"( {"price": 1.50, "tags":["a", "b"]} )";
  auto m = build_message(input("application/json", body), {});
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find(R"("data": {"price": 1.50, "tags":["a", "b"]} )"), std::string::npos)
      << m->body;
  auto ce = body_of(*m);
  EXPECT_EQ(ce["data"], json::parse(body));
  EXPECT_EQ(ce["topic"], "reservations");
  EXPECT_EQ(ce["datacontenttype"], "application/json");
  for (const char* scalar : {"42", R"("text")", "[1,2]", "null", "true"}) {
    auto s = build_message(input("application/json", scalar), {});
    ASSERT_TRUE(s.ok()) << scalar;
    EXPECT_EQ(body_of(*s)["data"], json::parse(scalar)) << s->body;
  }
  auto over = parse_publish_metadata({{"cloudevent.data", "replaced"}}, fixed_now());
  ASSERT_TRUE(over.ok());
  auto replaced = build_message(input("application/json", body), *over);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(body_of(*replaced)["data"], "replaced") << replaced->body;
}

// The usual publish's envelope is written as text; with a cloudevent.*
// override it is built as a JSON object. Both give the same event: an override
// that sets `type` to its default forces the second way.
TEST(cloud_event, the_written_envelope_equals_the_built_one) {
  auto same_type =
      parse_publish_metadata({{"cloudevent.type", "com.dapr.event.sent"}}, fixed_now());
  ASSERT_TRUE(same_type.ok());
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"application/json", R"({"order":42,"note":"a \"quoted\" word\n"})"},
      {"application/json", "{not json"},
      {"application/json; charset=utf-8", "[1, 2.5e3, null]"},
      {"", "line one\nline \"two\" \x01 caf\xc3\xa9"},
      {"text/plain", ""},
      {"application/octet-stream", std::string("\x00\x01\xff\x10", 4)},
      {"image/png", "abcde"},
      // Hostile JSON: nesting past the parser's depth limit, an exponent out of range,
      // invalid UTF-8 in a string, trailing garbage, a byte-order mark, surrounding space.
      {"application/json", std::string(200, '[') + std::string(200, ']')},
      {"application/json", R"({"n":1e400,"m":-0.0})"},
      {"application/json", "{\"s\":\"\xff\xfe\"}"},
      {"application/json", R"({"a":1} x)"},
      {"application/json", "\xef\xbb\xbf{\"a\":1}"},
      {"application/json", " \n {\"a\" : [ 1 , 2 ] }\t "},
      // The JSON check builds nothing since session 9: the same answers as json::parse at
      // the depth limit (32 deep parses, 33 does not), for comments, trailing commas, the
      // largest finite numbers and integers no 64 bits hold, empty and blank bodies.
      {"application/json", std::string(32, '[') + std::string(32, ']')},
      {"application/json", std::string(33, '[') + std::string(33, ']')},
      {"application/json", "[1, /* note */ 2]"},
      {"application/json", "[1, 2,]"},
      {"application/json", R"({"max":1.7976931348623157e308,"neg":-1e400})"},
      {"application/json", "[18446744073709551616, -9223372036854775809, 1e-400]"},
      {"application/json", ""},
      {"application/json", "  "},
      {"application/json", "{\"a\":\"\\ud800\"}"},
      {"application/json", "[\"\\u00e9\", \"caf\xc3\xa9\"]"}};
  for (const auto& [type, body] : bodies) {
    for (bool traced : {true, false}) {
      for (bool ttl : {false, true}) {
        auto in = input(type, body);
        if (!traced) in.traceparent.clear();
        in.tracestate = traced ? "k=v,\"odd\"" : "";
        publish_metadata written;
        publish_metadata built = *same_type;
        if (ttl) {
          written.ttl = std::chrono::seconds(30);
          built.ttl = std::chrono::seconds(30);
        }
        auto a = build_message(in, written);
        auto b = build_message(in, built);
        ASSERT_TRUE(a.ok() && b.ok()) << type << " " << body;
        boost::system::error_code ec_a, ec_b;
        // The envelope is one level deeper than its data (a body 32 deep makes it 33).
        json::parse_options deeper;
        deeper.max_depth = 64;
        const auto va = json::parse(a->body, ec_a, {}, deeper);
        const auto vb = json::parse(b->body, ec_b, {}, deeper);
        ASSERT_FALSE(ec_a) << "written envelope is not JSON: " << a->body;
        ASSERT_FALSE(ec_b) << "built envelope is not JSON: " << b->body;
        EXPECT_EQ(va, vb) << a->body << "\n" << b->body;
        EXPECT_EQ(a->headers, b->headers) << type;
      }
    }
  }
}

TEST(cloud_event, text_binary_and_invalid_json_bodies) {
  auto text = build_message(input("", "hello"), {});
  EXPECT_EQ(body_of(*text)["data"], "hello");
  EXPECT_EQ(body_of(*text)["datacontenttype"], "text/plain");
  auto bin = build_message(input("application/octet-stream", std::string("\x00\x01\xff", 3)), {});
  EXPECT_EQ(body_of(*bin)["data_base64"], "AAH/");
  EXPECT_FALSE(body_of(*bin).contains("data"));
  auto bad = build_message(input("application/json", "{not json"), {});
  EXPECT_EQ(body_of(*bad)["data"], "{not json");  // as Dapr: travels as a string
  // A number no double holds would be written back as `Infinity` (not JSON): as Go's
  // encoding/json (Dapr) rejects it, the body travels as a string, unchanged.
  auto huge = build_message(input("application/json", R"({"n":1e400})"), {});
  EXPECT_EQ(body_of(*huge)["data"], R"({"n":1e400})");
  // Bytes that are not UTF-8 cannot be a JSON string: base64, nothing lost.
  for (const char* type : {"text/plain", "application/json", ""}) {
    auto raw = build_message(input(type, "ok \xff\xfe"), {});
    ASSERT_TRUE(raw.ok()) << type;
    EXPECT_EQ(body_of(*raw)["data_base64"], "b2sg//4=") << type;
    EXPECT_FALSE(body_of(*raw).contains("data")) << type;
  }
  auto passthrough_huge = build_message(
      input("application/cloudevents+json", R"({"id":"x","type":"t","source":"s","data":-1e999})"),
      {});
  ASSERT_FALSE(passthrough_huge.ok());
  EXPECT_EQ(passthrough_huge.error().info().http_status, 400);
}

TEST(cloud_event, passthrough_keeps_the_apps_event_and_fills_defaults) {
  auto m = build_message(
      input("application/cloudevents+json", R"({"id":"mine","type":"t","source":"s","data":1})"),
      {});
  ASSERT_TRUE(m.ok());
  auto ce = body_of(*m);
  EXPECT_EQ(ce["id"], "mine");
  EXPECT_EQ(ce["type"], "t");
  EXPECT_EQ(ce["specversion"], "1.0");
  EXPECT_EQ(ce["topic"], "reservations");
  auto bad = build_message(input("application/cloudevents+json", "[1,2]"), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, errc::pubsub_cloud_events_ser);
  EXPECT_EQ(bad.error().info().http_status, 400);
}

TEST(cloud_event, raw_payload_overrides_ttl_and_kept_metadata) {
  auto meta = parse_publish_metadata({{"metadata.rawPayload", "true"},
                                      {"metadata.ttlInSeconds", "60"},
                                      {"metadata.partitionKey", "k1"},
                                      {"other", "ignored"}},
                                     fixed_now());
  ASSERT_TRUE(meta.ok());
  EXPECT_TRUE(meta->raw_payload);
  auto m = build_message(input("application/json", R"({"a":1})"), *meta);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->body, R"({"a":1})");
  EXPECT_EQ(*backends::find_header(m->headers, header_raw_payload), "true");
  EXPECT_EQ(*backends::find_header(m->headers, "metadata.partitionKey"), "k1");
  const auto expires = std::chrono::duration_cast<std::chrono::milliseconds>(
      (fixed_now() + std::chrono::seconds(60)).time_since_epoch());
  EXPECT_EQ(*backends::find_header(m->headers, header_expires_at), std::to_string(expires.count()));

  auto over = parse_publish_metadata(
      {{"metadata.cloudevent.type", "custom"}, {"cloudevent.source", "elsewhere"}}, fixed_now());
  ASSERT_TRUE(over.ok());
  auto ce = body_of(*build_message(input("text/plain", "x"), *over));
  EXPECT_EQ(ce["type"], "custom");
  EXPECT_EQ(ce["source"], "elsewhere");
}

// The id's text build_message hands out (for the PRODUCER span) is the
// message id's in every form of body: the written envelope, the built one
// (overrides), an app's CloudEvent passed through, a raw payload.
TEST(cloud_event, the_message_ids_text_is_given_out_in_every_form) {
  auto raw = parse_publish_metadata({{"metadata.rawPayload", "true"}}, fixed_now());
  auto over = parse_publish_metadata({{"cloudevent.type", "custom"}}, fixed_now());
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(over.ok());
  const std::pair<envelope_input, publish_metadata> cases[] = {
      {input("application/json", R"({"a":1})"), {}},
      {input("text/plain", "x"), *over},
      {input("application/cloudevents+json", R"({"id":"apps","data":1})"), {}},
      {input("application/json", R"({"a":1})"), *raw},
  };
  for (auto [in, meta] : cases) {
    in.message_id = id128{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    message_id_text text;
    text.fill('?');
    ASSERT_TRUE(build_message(in, meta, &text).ok());
    EXPECT_EQ(std::string_view(text.data(), text.size()), in.message_id.to_string());
  }
}

TEST(cloud_event, every_delayed_publish_spelling) {
  const wall_time now = fixed_now();
  const wall_time later = *parse_rfc3339("2026-03-08T12:00:00Z");
  for (const char* key :
       {"metadata.deliverAt", "metadata.scheduledSendTime", "metadata.ScheduledEnqueueTimeUtc",
        "metadata.DELIVERAT", "metadata.scheduledsendtime"}) {
    auto meta = parse_publish_metadata({{key, "2026-03-08T12:00:00Z"}}, now);
    ASSERT_TRUE(meta.ok()) << key;
    ASSERT_TRUE(meta->deliver_at.has_value()) << key;
    EXPECT_EQ(*meta->deliver_at, later) << key;
  }
  auto after = parse_publish_metadata({{"metadata.deliverAfter", "7d"}}, now);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after->deliver_at, later);
  auto m = build_message(input("text/plain", "x"), *after);
  EXPECT_EQ(m->deliver_at, later);
  auto ninety = parse_publish_metadata({{"metadata.deliverafter", "90s"}}, now);
  EXPECT_EQ(*ninety->deliver_at, now + std::chrono::seconds(90));
}

TEST(cloud_event, past_delivery_time_means_now) {
  auto meta = parse_publish_metadata({{"metadata.deliverAt", "2020-01-01T00:00:00Z"}}, fixed_now());
  ASSERT_TRUE(meta.ok());
  EXPECT_FALSE(meta->deliver_at.has_value());
}

TEST(cloud_event, bad_metadata_values_are_400_with_a_clear_message) {
  struct bad_case {
    pairs query;
    std::string expect;
  };
  const std::vector<bad_case> cases = {
      {{{"metadata.deliverAt", "tomorrow"}}, "metadata.deliverAt='tomorrow': expected an RFC 3339"},
      {{{"metadata.deliverAfter", "soon"}}, "metadata.deliverAfter='soon': expected a duration"},
      {{{"metadata.deliverAfter", "-5s"}}, "metadata.deliverAfter='-5s'"},
      {{{"metadata.ttlInSeconds", "ten"}}, "metadata.ttlInSeconds='ten'"},
      {{{"metadata.ttlInSeconds", "-1"}}, "metadata.ttlInSeconds='-1'"},
      {{{"metadata.rawPayload", "yes please"}}, "metadata.rawPayload='yes please'"},
      {{{"metadata.deliverAt", "2026-04-01T00:00:00Z"}, {"metadata.deliverAfter", "1h"}},
       "give only one"},
  };
  for (const auto& c : cases) {
    auto r = parse_publish_metadata(c.query, fixed_now());
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_EQ(r.error().code, errc::pubsub_request_metadata);
    EXPECT_EQ(r.error().info().http_status, 400);
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
}

TEST(cloud_event, json_content_types) {
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("application/json; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type("application/vnd.x+json"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
}

TEST(cloud_event, trace_members_are_escaped_and_never_replace_the_apps_or_an_override) {
  const json::value tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto in = input("application/json", R"({"order":42})");
  in.tracestate = std::string("a=\"q\\b", 6) + '\x01';
  auto m = build_message(in, {});
  ASSERT_TRUE(m.ok());
  auto ce = body_of(*m);
  EXPECT_EQ(ce["traceparent"], tp);
  EXPECT_EQ(ce["traceid"], tp);
  EXPECT_EQ(ce["tracestate"], json::value(in.tracestate));
  EXPECT_EQ(ce["data"].as_object()["order"], 42);
  EXPECT_EQ(ce.size(), 12u);

  // The app's own event keeps its members; the missing ones are added.
  auto own = build_message(
      input("application/cloudevents+json", R"({"id":"mine","traceparent":"theirs","data":1})"),
      {});
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(body_of(*own)["traceparent"], "theirs");
  EXPECT_EQ(body_of(*own)["traceid"], tp);
  EXPECT_FALSE(body_of(*own).contains("tracestate"));

  // An override wins, in the body and in the headers.
  auto meta = parse_publish_metadata({{"metadata.cloudevent.traceid", "mine"}}, fixed_now());
  ASSERT_TRUE(meta.ok());
  auto over = build_message(input("text/plain", "x"), *meta);
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(body_of(*over)["traceid"], "mine");
  EXPECT_EQ(body_of(*over)["traceparent"], tp);
  EXPECT_EQ(over->body.find("\"traceid\""), over->body.rfind("\"traceid\""));  // once

  // A caller's traceparent that JSON must escape is escaped in both members.
  auto odd = input("text/plain", "x");
  odd.traceparent = "00-\"quoted\"\\";
  auto escaped = build_message(odd, {});
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ(body_of(*escaped)["traceparent"], json::value(odd.traceparent));
  EXPECT_EQ(body_of(*escaped)["traceid"], json::value(odd.traceparent));

  // No trace context, no trace members; a body larger than the first guess.
  auto plain = input("text/plain", std::string(5000, 'z'));
  plain.traceparent.clear();
  auto none = build_message(plain, {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(body_of(*none).contains("traceparent"));
  EXPECT_FALSE(body_of(*none).contains("traceid"));
  EXPECT_EQ(body_of(*none)["data"], json::value(std::string(5000, 'z')));
  EXPECT_EQ(backends::find_header(none->headers, "traceparent"), nullptr);
}

// An input given away (build_message(envelope_input&&): its trace context and a
// raw body moved into the message) builds the same message as one kept.
TEST(cloud_event, an_input_given_away_builds_the_same_message_as_one_kept) {
  const auto raw = parse_publish_metadata({{"metadata.rawPayload", "true"}}, fixed_now());
  const auto traceparent_override =
      parse_publish_metadata({{"metadata.cloudevent.traceparent",
                               "00-11111111111111111111111111111111-2222222222222222-01"}},
                             fixed_now());
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(traceparent_override.ok());
  auto with_state = input("application/json", R"({"a":1})");
  with_state.tracestate = "k=v";
  auto without_trace = input("text/plain", "x");
  without_trace.traceparent.clear();
  const std::pair<envelope_input, publish_metadata> cases[] = {
      {input("application/json", R"({"order":42})"), {}},
      {with_state, {}},
      {with_state, *raw},
      {input("application/octet-stream", std::string("\x00\x01", 2)), *raw},
      {with_state, *traceparent_override},
      {without_trace, {}},
      {input("application/cloudevents+json", R"({"id":"mine","data":1})"), {}},
  };
  for (const auto& [in, meta] : cases) {
    message_id_text kept_id{};
    message_id_text given_id{};
    const auto kept = build_message(in, meta, &kept_id);
    envelope_input copy = in;
    const auto given = build_message(std::move(copy), meta, &given_id);
    ASSERT_TRUE(kept.ok());
    ASSERT_TRUE(given.ok());
    EXPECT_EQ(given->body, kept->body);
    EXPECT_EQ(given->headers, kept->headers);
    EXPECT_EQ(given->topic, kept->topic);
    EXPECT_EQ(given->id, kept->id);
    EXPECT_EQ(given_id, kept_id);
  }
}

}  // namespace
}  // namespace outrider::sidecar
