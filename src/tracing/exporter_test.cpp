#include "tracing/exporter.h"

#include <chrono>
#include <condition_variable>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

#include "http/server.h"
#include "io/runtime.h"
#include "tracing/codec.h"
#include "tracing/otlp_receiver.h"

namespace outrider::tracing {
namespace {

using namespace std::chrono_literals;

// Waits (generously) for `cond`; no timing assertions.
template <class F>
bool eventually(F cond) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

span make_span(std::uint64_t id, std::string name = "op") {
  span s;
  s.trace_id = id128{1, 2};
  s.span_id = id;
  s.name = std::move(name);
  s.kind = span_kind::server;
  s.start_ns = 1'700'000'000'000'000'000;
  s.end_ns = s.start_ns + 1000;
  s.local_endpoint.service_name = "svc";
  s.attributes.push_back({"http.request.method", attribute_value::of("POST")});
  s.attributes.push_back({"http.response.status_code", attribute_value::of_int(204)});
  return s;
}

// A test receiver: the real HTTP server, answering from a script.
struct receiver {
  struct got {
    std::string content_type;
    std::string body;
  };
  io::runtime rt{1};
  std::mutex m;
  std::vector<got> requests;
  std::vector<http::response> script;  // answers in order; then 200
  std::unique_ptr<http::server> server;

  receiver() {
    server = std::make_unique<
        http::server>(rt, http::server_options{}, [this](http::request&& req, http::responder r) {
      http::response resp{200, {}, {}};
      {
        std::lock_guard lock(m);
        requests.push_back({std::string(req.headers.get("content-type").value_or("")), req.body});
        if (!script.empty()) {
          resp = script.front();
          script.erase(script.begin());
        }
      }
      r.send(std::move(resp));
    });
    rt.start();
    EXPECT_TRUE(server->start().ok());
  }
  ~receiver() {
    server->stop(0s);
    rt.stop();
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + std::string(path);
  }
  std::size_t count() {
    std::lock_guard lock(m);
    return requests.size();
  }
  got at(std::size_t i) {
    std::lock_guard lock(m);
    return requests.at(i);
  }
};

exporter_options fast(std::string endpoint, export_protocol p) {
  exporter_options o;
  o.endpoint = std::move(endpoint);
  o.protocol = p;
  o.batch_delay = 10ms;
  o.initial_backoff = 10ms;
  return o;
}

TEST(Exporter, SendsOtlpProtobufBatches) {
  receiver rx;
  metrics::registry reg;
  exporter ex(fast(rx.url("/v1/traces"), export_protocol::otlp_protobuf), make_http_transport(),
              &reg);
  ASSERT_TRUE(ex.start().ok());
  for (std::uint64_t i = 1; i <= 3; ++i) ex.export_span(make_span(i));
  ASSERT_TRUE(eventually([&] { return ex.stats().exported == 3; }));
  ex.stop();
  std::vector<span> all;
  for (std::size_t i = 0; i < rx.count(); ++i) {
    EXPECT_EQ(rx.at(i).content_type, "application/x-protobuf");
    auto decoded = decode_otlp_protobuf(rx.at(i).body);
    ASSERT_TRUE(decoded);
    for (auto& s : decoded->spans) all.push_back(std::move(s));
  }
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0].service_name(), "svc");
  EXPECT_EQ(all[0].kind, span_kind::server);
  ASSERT_NE(all[0].attribute("http.response.status_code"), nullptr);
  EXPECT_EQ(all[0].attribute("http.response.status_code")->int_value, 204);
  EXPECT_NE(reg.expose().find("outrider_tracing_exporter_spans_total{outcome=\"exported\"} 3"),
            std::string::npos);
}

TEST(Exporter, SendsOtlpJsonAndZipkin) {
  for (auto p : {export_protocol::otlp_json, export_protocol::zipkin_json}) {
    receiver rx;
    exporter ex(fast(rx.url("/x"), p), make_http_transport(), nullptr);
    ASSERT_TRUE(ex.start().ok());
    ex.export_span(make_span(7, "Publish"));
    ASSERT_TRUE(eventually([&] { return ex.stats().exported == 1; }));
    ex.stop();
    ASSERT_EQ(rx.count(), 1U);
    EXPECT_EQ(rx.at(0).content_type, "application/json");
    auto decoded = p == export_protocol::otlp_json ? decode_otlp_json(rx.at(0).body)
                                                   : decode_zipkin_json(rx.at(0).body);
    ASSERT_TRUE(decoded) << rx.at(0).body;
    ASSERT_EQ(decoded->spans.size(), 1U);
    EXPECT_EQ(decoded->spans[0].span_id, 7U);
  }
}

TEST(Exporter, RetriesOn503HonouringRetryAfter) {
  receiver rx;
  http::response busy{503, {}, {}};
  busy.headers.set("Retry-After", "1");
  rx.script.push_back(busy);
  rx.script.push_back(http::response{429, {}, {}});  // no Retry-After: backoff
  exporter ex(fast(rx.url("/v1/traces"), export_protocol::otlp_protobuf), make_http_transport(),
              nullptr);
  std::mutex m;
  std::vector<nanoseconds> waits;
  ex.on_retry_wait_for_test([&](nanoseconds d) {
    std::lock_guard lock(m);
    waits.push_back(d);
  });
  ASSERT_TRUE(ex.start().ok());
  ex.export_span(make_span(1));
  ASSERT_TRUE(eventually([&] { return ex.stats().exported == 1; }));
  ex.stop();
  EXPECT_EQ(rx.count(), 3U);
  std::lock_guard lock(m);
  ASSERT_EQ(waits.size(), 2U);
  EXPECT_EQ(waits[0], std::chrono::seconds(1));  // the server's Retry-After
  EXPECT_EQ(waits[1], 20ms);                     // our backoff (second attempt: doubled)
  EXPECT_EQ(ex.stats().failed, 0U);
}

TEST(Exporter, DoesNotRetryOtherErrors) {
  receiver rx;
  rx.script.push_back(http::response{400, {}, {}});
  exporter ex(fast(rx.url("/v1/traces"), export_protocol::otlp_protobuf), make_http_transport(),
              nullptr);
  ASSERT_TRUE(ex.start().ok());
  ex.export_span(make_span(1));
  ASSERT_TRUE(eventually([&] { return ex.stats().failed == 1; }));
  ex.stop();
  EXPECT_EQ(rx.count(), 1U);
}

// A transport that holds every POST until released.
struct gated_transport final : export_transport {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  std::size_t posts = 0;
  result<http::response> post(const http::url&, std::string_view, std::string_view,
                              nanoseconds) override {
    std::unique_lock lock(m);
    ++posts;
    cv.wait(lock, [&] { return open; });
    return http::response{200, {}, {}};
  }
  void release() {
    std::lock_guard lock(m);
    open = true;
    cv.notify_all();
  }
};

TEST(Exporter, BoundedQueueDropsAndCountsWithoutBlocking) {
  auto transport = std::make_unique<gated_transport>();
  auto* gate = transport.get();
  exporter_options o = fast("http://127.0.0.1:9/v1/traces", export_protocol::otlp_protobuf);
  o.max_queue = 4;
  o.max_batch = 100;
  o.batch_delay = std::chrono::hours(1);  // the worker waits for a full batch or stop()
  metrics::registry reg;
  exporter ex(o, std::move(transport), &reg);
  ASSERT_TRUE(ex.start().ok());
  for (std::uint64_t i = 1; i <= 10; ++i) ex.export_span(make_span(i));  // returns at once
  EXPECT_EQ(ex.stats().dropped, 6U);
  EXPECT_NE(reg.expose().find("outrider_tracing_exporter_spans_total{outcome=\"dropped\"} 6"),
            std::string::npos);
  std::thread releaser([&] {
    eventually([&] {
      std::lock_guard lock(gate->m);
      return gate->posts > 0;
    });
    gate->release();
  });
  ex.stop();  // flushes the 4 queued spans
  releaser.join();
  EXPECT_EQ(ex.stats().exported, 4U);
}

TEST(Exporter, ParsesRetryAfter) {
  const wall_time now = std::chrono::system_clock::from_time_t(784111777);  // 1994-11-06 08:49:37Z
  EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), std::chrono::seconds(10));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now), nanoseconds(0));
  EXPECT_FALSE(parse_retry_after("soon", now));
  EXPECT_FALSE(parse_retry_after("", now));
}

TEST(Exporter, ProtocolFromUrlAndName) {
  EXPECT_EQ(guess_export_protocol("http://h:9411/api/v2/spans"), export_protocol::zipkin_json);
  EXPECT_EQ(guess_export_protocol("http://h:4318/v1/traces"), export_protocol::otlp_protobuf);
  EXPECT_EQ(*parse_export_protocol("otlp-json"), export_protocol::otlp_json);
  EXPECT_FALSE(parse_export_protocol("grpc"));
}

struct collecting_sink final : span_sink {
  std::vector<span> spans;
  void export_span(span&& s) override { spans.push_back(std::move(s)); }
};

TEST(OtlpReceiver, ForwardsDecodedSpansAndAnswersInKind) {
  collecting_sink sink;
  http::request req;
  req.method = "POST";
  req.headers.set("content-type", "application/json");
  req.body = encode_otlp_json({make_span(5)});
  auto resp = receive_otlp_traces(std::move(req), sink);
  EXPECT_EQ(resp.status, 200);
  ASSERT_EQ(sink.spans.size(), 1U);
  EXPECT_EQ(sink.spans[0].service_name(), "svc");

  http::request proto;
  proto.headers.set("content-type", "application/x-protobuf");
  proto.headers.set("content-encoding", "gzip");
  proto.body = gzip(encode_otlp_protobuf({make_span(6)}));
  EXPECT_EQ(receive_otlp_traces(std::move(proto), sink).status, 200);
  EXPECT_EQ(sink.spans.size(), 2U);

  http::request bad;
  bad.headers.set("content-type", "text/plain");
  EXPECT_EQ(receive_otlp_traces(std::move(bad), sink).status, 415);
  http::request junk;
  junk.headers.set("content-type", "application/json");
  junk.body = "{";
  EXPECT_EQ(receive_otlp_traces(std::move(junk), sink).status, 400);
}

}  // namespace
}  // namespace outrider::tracing
