// bench_tracing_path: the CPU the sidecar's tracing adds to one publish,
// measured in one process with Google Benchmark (docs/benchmarks.md, tracing).
//
//   bench_tracing_path [--benchmark_repetitions=15] [--benchmark_min_time=0.3]
//                      [--benchmark_filter=traceparent:1] [other Google Benchmark flags]
//                      [--cold-bytes=8388608] [--cold-iterations=2000]
//
// Defaults: 15 repetitions of 0.3 s each, in random interleaved order; the
// console shows the aggregates (the summary reads every repetition, so don't
// pass --benchmark_report_aggregates_only or --benchmark_display_aggregates_only).
//
// Each iteration is the sidecar's per-publish work around the broker call
// (sidecar.cpp's traced() wrapper and publish(), through the same functions,
// src/sidecar/request_tracing.h): a parsed request is handled -- the SERVER
// span from the request's traceparent and its context injected into the
// headers, the PRODUCER span, the CloudEvent built with the producer's
// context (build_message), the message noted on the span, both spans ended
// with the response status and handed to a real tracing::exporter, whose
// batching thread encodes them to OTLP protobuf (the sidecar's defaults:
// batches of 1024, queue 8192) and posts them to a transport that discards
// the body. The same iteration with tracing off (no tracer: the request's
// traceparent goes into the CloudEvent unchanged) is the baseline.
//
// CPU is the process's (MeasureProcessCPUTime), so the exporter's thread --
// encoding, wake-ups, freeing the records -- is counted per publish. Variants:
//   publish/tracing:0   tracing off (baseline)
//   publish/tracing:1   sampling 1.0 (two spans recorded and exported)
//   publish/tracing:2   sampling 0 and no sampled parent (contexts only)
// with traceparent:1 (the request carries one, sampled) or traceparent:0.
// After the runs a JSON line gives, per traceparent variant, the median CPU
// per publish of each mode over the repetitions, the difference on - off, and
// the spread of the paired differences (repetition i of each mode; with
// random interleaving the pairs ran close together in time).
#include <algorithm>
#include <atomic>
#include <benchmark/benchmark.h>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/handler.h"
#include "sidecar/cloud_event.h"
#include "sidecar/request_tracing.h"
#include "tracing/exporter.h"
#include "tracing/tracer.h"

namespace {

using namespace outrider;

// The exporter's transport: answers 200 at once, the body is dropped.
class discard_transport final : public tracing::export_transport {
 public:
  result<http::response> post(const http::url&, std::string_view body, std::string_view,
                              nanoseconds) override {
    bytes_.fetch_add(body.size(), std::memory_order_relaxed);
    return http::response{200, {}, {}};
  }
  std::uint64_t bytes() const noexcept { return bytes_.load(); }

 private:
  std::atomic<std::uint64_t> bytes_{0};
};

class wall_clock final : public clock {
 public:
  wall_time now() const override { return std::chrono::system_clock::now(); }
  mono_time monotonic_now() const override { return std::chrono::steady_clock::now(); }
  timer_id call_after(nanoseconds, callback) override { return 0; }
  bool cancel(timer_id) override { return false; }
};

// A publish as the HTTP server hands it to the sidecar (what a Dapr SDK sends).
http::request publish_request(bool with_traceparent) {
  http::request req;
  req.method = "POST";
  req.target = "/v1.0/publish/pubsub/orders";
  req.path = req.target;
  req.remote_address = "127.0.0.1:53412";
  req.headers.add("Host", "127.0.0.1:3500");
  req.headers.add("User-Agent", "dapr-sdk-js/3.4");
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Content-Length", "64");
  if (with_traceparent) {
    req.headers.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  }
  req.body = R"({"orderId":"A-10023","customer":"c-77","items":3,"total":129.95})";
  req.params.add("pubsub", "pubsub");
  req.params.add("topic", "orders");
  return req;
}

constexpr std::string_view backend_type = "embedded";
constexpr std::uint16_t listen_port = 3500;

// One publish through the sidecar's handler code, up to the broker call and
// back from its confirmation (no broker: the message is dropped). Not inlined,
// so that bench/tracing_callgrind.py can read its inclusive cost per call.
[[gnu::noinline]] void handle_publish(http::request&& req, const tracing::tracer* tracer,
                                      const sidecar::publish_metadata& meta) {
  int answered = 0;
  http::responder r([&answered](http::response&& resp) { answered = resp.status; });
  // sidecar.cpp traced(): the SERVER span, a responder that ends it, its
  // context in scope while the handler runs.
  tracing::active_span server;
  std::optional<sidecar::server_span_scope> scope;
  if (tracer != nullptr) {
    server = sidecar::start_server_span(*tracer, req, "127.0.0.1", listen_port, false,
                                        !sidecar::passes_no_headers_on(req.path));
    scope.emplace(server.context());
    r = sidecar::ending_on_response(server.take_recording(), std::move(r));
  }
  // sidecar.cpp publish(): the envelope, the PRODUCER span, the message.
  const std::string pubsub(req.params.at("pubsub"));
  const std::string topic(req.params.at("topic"));
  const wall_time now = std::chrono::system_clock::now();
  sidecar::envelope_input in;
  in.app_id = "checkout";
  in.pubsub_name = pubsub;
  in.topic = topic;
  in.content_type = std::string(req.headers.get("content-type").value_or(""));
  in.traceparent = std::string(req.headers.get("traceparent").value_or(""));
  in.tracestate = std::string(req.headers.get("tracestate").value_or(""));
  in.message_id = id128::time_ordered(now);
  in.now = now;
  in.body = std::move(req.body);
  tracing::active_span producer;
  if (tracer != nullptr) {
    producer =
        sidecar::start_producer_span(*tracer, req.headers, backend_type, pubsub, topic, &now);
    producer.traceparent_into(in.traceparent);
    in.tracestate = producer.tracestate();
  }
  sidecar::message_id_text id_text;
  auto msg = sidecar::build_message(std::move(in), meta, &id_text);
  if (!msg) std::abort();
  sidecar::note_message(producer, *msg, std::string_view(id_text.data(), id_text.size()));
  auto span = std::make_shared<tracing::span_recording>(producer.take_recording());
  std::vector<backends::message> batch;
  batch.push_back(std::move(*msg));
  benchmark::DoNotOptimize(batch.data());
  // The broker's confirmation.
  span->end();
  auto resp = http::response::no_content();
  resp.headers.set("outrider-message-id", batch.front().id.to_string());
  r.send(std::move(resp));
  benchmark::DoNotOptimize(answered);
}

void publish(benchmark::State& state) {
  const auto mode = state.range(0);
  const bool with_traceparent = state.range(1) != 0;
  auto transport = std::make_unique<discard_transport>();
  auto* sent = transport.get();
  tracing::exporter_options eo;
  eo.endpoint = "http://127.0.0.1:4318/v1/traces";
  auto ex = std::make_shared<tracing::exporter>(eo, std::move(transport), nullptr);
  if (!ex->start()) std::abort();
  std::unique_ptr<tracing::tracer> tracer;
  if (mode != 0) {
    tracing::tracer_options to;
    to.service_name = "checkout";
    to.sampling = mode == 1 ? 1.0 : 0.0;
    to.scope_name = "outrider-sidecar";
    to.scope_version = "bench";
    to.resource_attributes.push_back(
        {"outrider.component", tracing::attribute_value::of("sidecar")});
    tracer = std::make_unique<tracing::tracer>(std::move(to), ex, std::make_shared<wall_clock>());
  }
  http::request request = publish_request(with_traceparent);
  if (with_traceparent && mode == 2) {
    // Sampling 0 follows a sampled parent: make the caller's context unsampled.
    request.headers.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  }
  const sidecar::publish_metadata meta;
  for (auto _ : state) {
    http::request req = request;  // the server parses a fresh one per request
    handle_publish(std::move(req), tracer.get(), meta);
  }
  tracer.reset();
  ex->stop();
  const auto c = ex->stats();
  state.counters["spans_exported"] = static_cast<double>(c.exported);
  state.counters["spans_dropped"] = static_cast<double>(c.dropped);
  state.counters["bytes_per_publish"] =
      benchmark::Counter(static_cast<double>(sent->bytes()), benchmark::Counter::kAvgIterations);
}

BENCHMARK(publish)
    ->ArgNames({"tracing", "traceparent"})
    ->ArgsProduct({{0, 1, 2}, {1, 0}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

// The same publish with the caches cold, as in a sidecar on a busy machine
// (other processes run between two requests): before each publish, outside
// the timed part, cold_bytes (8 MiB; --cold-bytes) of other data is written
// and 64 KiB of other code runs, so the publish's code and data come back from
// the last-level cache or memory. On − off here is the cost of tracing's footprint (code and data
// touched per request), which the hot loop above hides. --cold-iterations
// (2000) publishes per repetition.
std::size_t cold_bytes = 8 * 1024 * 1024;
std::int64_t cold_iterations = 2000;

// Runs 64 KiB of straight-line code (one-byte no-ops), twice the first-level
// instruction cache: after it none of the publish's code is there, so the
// cold publish fetches every code line it runs (on − off of its instruction
// cache misses is then tracing's code footprint in lines, not an artefact of
// whether the rest of the loop's code happened to fit).
[[gnu::noinline]] void evict_instruction_cache() {
  asm volatile(".rept 65536\n\tnop\n\t.endr" ::: "memory");
}

void publish_cold(benchmark::State& state) {
  const bool traced = state.range(0) != 0;
  auto transport = std::make_unique<discard_transport>();
  tracing::exporter_options eo;
  eo.endpoint = "http://127.0.0.1:4318/v1/traces";
  auto ex = std::make_shared<tracing::exporter>(eo, std::move(transport), nullptr);
  if (!ex->start()) std::abort();
  std::unique_ptr<tracing::tracer> tracer;
  if (traced) {
    tracing::tracer_options to;
    to.service_name = "checkout";
    to.scope_name = "outrider-sidecar";
    to.scope_version = "bench";
    tracer = std::make_unique<tracing::tracer>(std::move(to), ex, std::make_shared<wall_clock>());
  }
  const http::request request = publish_request(true);
  const sidecar::publish_metadata meta;
  std::vector<std::uint64_t> other(cold_bytes / sizeof(std::uint64_t));
  std::uint64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& x : other) x = ++n;
    benchmark::DoNotOptimize(other.data());
    evict_instruction_cache();
    state.ResumeTiming();
    http::request req = request;
    handle_publish(std::move(req), tracer.get(), meta);
  }
  tracer.reset();
  ex->stop();
}

// Keeps every repetition's CPU time per publish, by benchmark name.
class collecting_reporter final : public benchmark::ConsoleReporter {
 public:
  collecting_reporter() : ConsoleReporter(OO_Tabular) {}
  // Shows only the aggregates (median, mean, ...) when there are some.
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> shown;
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Aggregate) shown.push_back(run);
      if (run.run_type != Run::RT_Iteration || run.iterations == 0) continue;
      cpu_us[run.run_name.function_name + "/" + run.run_name.args].push_back(
          run.GetAdjustedCPUTime());  // in the unit: µs
    }
    ConsoleReporter::ReportRuns(shown.empty() ? runs : shown);
  }
  std::map<std::string, std::vector<double>> cpu_us;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags (--cold-bytes=N, --cold-iterations=N), then Google Benchmark's.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--cold-bytes=")) {
      cold_bytes = std::stoull(std::string(a.substr(13)));
    } else if (a.starts_with("--cold-iterations=")) {
      cold_iterations = std::stoll(std::string(a.substr(18)));
    } else {
      args.push_back(argv[i]);
    }
  }
  benchmark::RegisterBenchmark("publish_cold", publish_cold)
      ->ArgNames({"tracing"})
      ->Arg(0)
      ->Arg(1)
      ->Iterations(cold_iterations)
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMicrosecond);
  // Defaults (given flags override them): interleaved repetitions, long enough
  // that the exporter's batches (1024 spans) are amortised.
  std::string defaults[] = {"--benchmark_repetitions=15", "--benchmark_min_time=0.3",
                            "--benchmark_enable_random_interleaving=true"};
  args.insert(args.begin() + 1, {defaults[0].data(), defaults[1].data(), defaults[2].data()});
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  std::string out = R"({"generator":"tracing_path")";
  for (const char* tp : {"1", "0"}) {
    const auto& off = reporter.cpu_us["publish/tracing:0/traceparent:" + std::string(tp)];
    const auto& on = reporter.cpu_us["publish/tracing:1/traceparent:" + std::string(tp)];
    const auto& unsampled = reporter.cpu_us["publish/tracing:2/traceparent:" + std::string(tp)];
    if (off.empty() || on.empty()) continue;
    std::vector<double> diffs;
    for (std::size_t i = 0; i < std::min(off.size(), on.size()); ++i)
      diffs.push_back(on[i] - off[i]);
    std::sort(diffs.begin(), diffs.end());
    char buf[512];
    std::snprintf(
        buf, sizeof buf,
        R"(,"traceparent_%s":{"repetitions":%zu,"cpu_us_off":%.3f,"cpu_us_on":%.3f,)"
        R"("cpu_us_unsampled":%.3f,"overhead_us":%.3f,"overhead_us_median_of_pairs":%.3f,)"
        R"("overhead_us_min":%.3f,"overhead_us_max":%.3f})",
        tp[0] == '1' ? "in" : "none", diffs.size(), median(off), median(on), median(unsampled),
        median(on) - median(off), median(diffs), diffs.front(), diffs.back());
    out += buf;
  }
  const auto& cold_off = reporter.cpu_us["publish_cold/tracing:0"];
  const auto& cold_on = reporter.cpu_us["publish_cold/tracing:1"];
  if (!cold_off.empty() && !cold_on.empty()) {
    std::vector<double> diffs;
    for (std::size_t i = 0; i < std::min(cold_off.size(), cold_on.size()); ++i)
      diffs.push_back(cold_on[i] - cold_off[i]);
    std::sort(diffs.begin(), diffs.end());
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        R"(,"cold_traceparent_in":{"repetitions":%zu,"cpu_us_off":%.3f,"cpu_us_on":%.3f,)"
        R"("overhead_us_median_of_pairs":%.3f,"overhead_us_min":%.3f,"overhead_us_max":%.3f})",
        diffs.size(), median(cold_off), median(cold_on), median(diffs), diffs.front(),
        diffs.back());
    out += buf;
  }
  out += "}";
  std::printf("%s\n", out.c_str());
  return 0;
}
