#include "tracing/exporter.h"

#include <chrono>
#include <condition_variable>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <set>
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

// Spans a tracer records, kept (not exported) so a test can encode them itself first.
struct keeping_sink final : span_sink {
  std::vector<recorded_span_ptr> recorded;
  void export_span(span&&) override {}
  void export_recorded(recorded_span_ptr s) override { recorded.push_back(std::move(s)); }
};

// `n` spans like the sidecar's (SERVER + PRODUCER pairs); the second (when
// `with_event`) with an event and a link (a record that does not pack).
std::vector<recorded_span_ptr> record_spans(std::size_t n, std::string service = "orders",
                                            std::uint64_t seed = 5, bool with_event = true) {
  keeping_sink sink;
  simulated_clock clk;
  xoshiro_random rng(seed);
  tracer_options o;
  o.service_name = std::move(service);
  o.scope_name = "outrider-sidecar";
  o.resource_attributes.push_back({"outrider.component", attribute_value::of("sidecar")});
  tracer t(o, borrow(sink), borrow(clk), &rng);
  for (std::size_t i = 0; i < n; ++i) {
    auto s = t.start_span(i % 2 == 0 ? "POST /v1.0/publish/{pubsub}/{topic}" : "publish orders",
                          i % 2 == 0 ? span_kind::server : span_kind::producer, nullptr);
    s.set(attr::http_request_method, "POST");
    s.set(attr::messaging_destination_name, "orders");
    s.set(attr::server_port, std::int64_t{3500});
    s.set("app.order", "a\"quoted\" value");
    if (i == 1 && with_event) {
      s.add_event("retry", {{"attempt", attribute_value::of_int(2)}});
      span_context other;
      other.trace_id = id128{9, 9};
      other.span_id = 8;
      s.add_link(other);
      s.set_error("broker said no");
    }
    clk.advance(1ms);
  }
  return std::move(sink.recorded);
}

decoded_batch decode(export_protocol p, std::string_view body) {
  auto decoded = p == export_protocol::otlp_protobuf ? decode_otlp_protobuf(body)
                 : p == export_protocol::otlp_json   ? decode_otlp_json(body)
                                                     : decode_zipkin_json(body);
  EXPECT_TRUE(decoded) << decoded.error().message;
  return decoded ? std::move(*decoded) : decoded_batch{};
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

TEST(Exporter, BoundedQueueDropsAndCountsRecordedSpans) {
  auto transport = std::make_unique<gated_transport>();
  auto* gate = transport.get();
  exporter_options o = fast("http://127.0.0.1:9/v1/traces", export_protocol::otlp_protobuf);
  o.max_queue = 4;  // chunks of one span
  o.max_batch = 100;
  o.batch_delay = std::chrono::hours(1);
  metrics::registry reg;
  exporter ex(o, std::move(transport), &reg);
  ASSERT_TRUE(ex.start().ok());
  ASSERT_EQ(ex.chunk_spans(), 1U);
  for (auto& s : record_spans(10)) ex.export_recorded(std::move(s));  // returns at once
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
  ex.stop();
  releaser.join();
  EXPECT_EQ(ex.stats().exported, 4U);
  for (auto& s : record_spans(2)) ex.export_recorded(std::move(s));  // stopped: dropped
  EXPECT_EQ(ex.stats().dropped, 8U);
}

// Chunks larger than one span: a full queue drops a whole chunk and counts its spans.
TEST(Exporter, AFullQueueDropsWholeChunks) {
  auto transport = std::make_unique<gated_transport>();
  auto* gate = transport.get();
  exporter_options o = fast("http://127.0.0.1:9/v1/traces", export_protocol::otlp_protobuf);
  o.max_queue = 40;  // chunks of 10
  o.max_batch = 1000;
  o.batch_delay = std::chrono::hours(1);
  exporter ex(o, std::move(transport), nullptr);
  ASSERT_TRUE(ex.start().ok());
  ASSERT_EQ(ex.chunk_spans(), 10U);
  for (auto& s : record_spans(65)) ex.export_recorded(std::move(s));
  // 4 chunks queued (40 spans), 2 dropped (20), 5 spans in this thread's open chunk.
  EXPECT_EQ(ex.stats().dropped, 20U);
  std::thread releaser([&] {
    eventually([&] {
      std::lock_guard lock(gate->m);
      return gate->posts > 0;
    });
    gate->release();
  });
  ex.stop();
  releaser.join();
  EXPECT_EQ(ex.stats().exported, 45U);
  EXPECT_EQ(ex.stats().dropped, 20U);
}

// Recorded spans are packed on the recording thread into its chunk and
// encoded from the chunks by the batching thread: the very bytes the batch
// encoders write. (A record that does not pack goes with its chunk as it is
// and is encoded after the chunk's packed ones: RecordedAndFullSpans... below.)
TEST(Exporter, RecordedSpansAreSentAsTheBatchEncodersWriteThem) {
  for (auto p :
       {export_protocol::otlp_protobuf, export_protocol::otlp_json, export_protocol::zipkin_json}) {
    receiver rx;
    auto o = fast(rx.url("/v1/traces"), p);
    o.batch_delay = std::chrono::hours(1);  // one batch, sent by stop()
    exporter ex(o, make_http_transport(), nullptr);
    ASSERT_TRUE(ex.start().ok());
    // Chunks handed over (256 spans each) and an open one.
    auto spans = record_spans(600, "orders", 5, false);
    ASSERT_EQ(ex.chunk_spans(), 256U);
    const std::string expected = encode_batch(p, spans, {});
    for (auto& s : spans) ex.export_recorded(std::move(s));
    ex.stop();
    ASSERT_EQ(rx.count(), 1U) << static_cast<int>(p);
    EXPECT_EQ(rx.at(0).body, expected) << static_cast<int>(p);
    EXPECT_EQ(decode(p, rx.at(0).body).spans.size(), 600U);
    EXPECT_EQ(ex.stats().exported, 600U);
  }
}

// Records and full-model spans (an app's) in one request; two resources.
TEST(Exporter, RecordedAndFullSpansOfTwoResourcesShareARequest) {
  for (auto p :
       {export_protocol::otlp_protobuf, export_protocol::otlp_json, export_protocol::zipkin_json}) {
    receiver rx;
    auto o = fast(rx.url("/v1/traces"), p);
    o.batch_delay = std::chrono::hours(1);
    exporter ex(o, make_http_transport(), nullptr);
    ASSERT_TRUE(ex.start().ok());
    auto orders = record_spans(3, "orders", 1);
    auto probes = record_spans(2, "probes", 2);
    ex.export_recorded(std::move(orders[0]));
    ex.export_recorded(std::move(probes[0]));  // another resource: the chunk is handed over
    ex.export_recorded(std::move(orders[1]));
    ex.export_span(make_span(77));
    ex.export_recorded(std::move(probes[1]));
    ex.export_recorded(std::move(orders[2]));
    ex.stop();
    std::map<std::string, int> services;
    std::size_t n = 0;
    for (std::size_t i = 0; i < rx.count(); ++i) {
      for (const auto& s : decode(p, rx.at(i).body).spans) {
        ++services[std::string(s.service_name())];
        ++n;
      }
    }
    EXPECT_EQ(n, 6U) << static_cast<int>(p);
    EXPECT_EQ(services["orders"], 3) << static_cast<int>(p);
    EXPECT_EQ(services["probes"], 2) << static_cast<int>(p);
    EXPECT_EQ(services["svc"], 1) << static_cast<int>(p);
    EXPECT_EQ(ex.stats().exported, 6U);
  }
}

// A thread that records a few spans and goes quiet (here: ends) has them sent
// after the batch delay, without a full chunk or stop().
TEST(Exporter, AQuietThreadsSpansAreSentAfterTheBatchDelay) {
  receiver rx;
  exporter ex(fast(rx.url("/v1/traces"), export_protocol::otlp_protobuf), make_http_transport(),
              nullptr);
  ASSERT_TRUE(ex.start().ok());
  std::thread quiet([&] {
    for (auto& s : record_spans(3)) ex.export_recorded(std::move(s));
  });
  quiet.join();
  auto more = record_spans(2, "orders", 9);
  for (auto& s : more) ex.export_recorded(std::move(s));  // this thread's own chunk
  EXPECT_TRUE(eventually([&] { return ex.stats().exported == 5; }));
  ex.stop();
  EXPECT_EQ(ex.stats().exported, 5U);
  EXPECT_EQ(ex.stats().dropped, 0U);
}

// Many threads at once: every span arrives exactly once.
TEST(Exporter, SpansOfManyThreadsArriveOnce) {
  receiver rx;
  auto o = fast(rx.url("/v1/traces"), export_protocol::otlp_protobuf);
  o.max_queue = 100000;
  exporter ex(o, make_http_transport(), nullptr);
  ASSERT_TRUE(ex.start().ok());
  constexpr std::size_t threads = 4;
  constexpr std::size_t per_thread = 1500;
  std::vector<std::thread> recorders;
  for (std::size_t t = 0; t < threads; ++t) {
    recorders.emplace_back([&, t] {
      for (auto& s : record_spans(per_thread, "orders", 100 + t)) ex.export_recorded(std::move(s));
    });
  }
  for (auto& t : recorders) t.join();
  EXPECT_TRUE(eventually([&] { return ex.stats().exported == threads * per_thread; }));
  ex.stop();
  std::set<std::uint64_t> ids;
  std::size_t n = 0;
  for (std::size_t i = 0; i < rx.count(); ++i) {
    for (const auto& s : decode(export_protocol::otlp_protobuf, rx.at(i).body).spans) {
      ids.insert(s.span_id);
      ++n;
    }
  }
  EXPECT_EQ(n, threads * per_thread);
  EXPECT_EQ(ids.size(), threads * per_thread);
  EXPECT_EQ(ex.stats().dropped, 0U);
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
