// bench_tracing: what tracing costs.
//
//   bench_tracing --mode exporter [--rate 100000] [--duration-s 10] [--protocol otlp]
//                 [--batch-delay-ms N]
//       Forks a sink process (an HTTP server answering 200 to every POST), then
//       creates spans with the sidecar's tracer at a fixed rate (8 attributes each,
//       like a CONSUMER span) and exports them to the sink. Reports the tracer's
//       CPU per span (the feeding thread) and the exporter's CPU as a share of one
//       core (process CPU minus the feeding thread's, over the wall time), plus
//       exported/dropped counts.
//   bench_tracing --mode encode [--protocol otlp] [--batches 200]
//       CPU per span of encoding 512-span batches (no network): spans in the
//       full model (us_per_span) and as the tracer records them
//       (recorded_us_per_span, what the exporter encodes; cold_recorded_us_per_span:
//       records just written by another thread, as in the exporter).
//   bench_tracing --mode sink --port N
//       Only the sink (for bench/tracing_overhead.py); counts the OTLP spans it
//       receives, `GET /count` answers them.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "common/driver.h"
#include "http/server.h"
#include "io/runtime.h"
#include "tracing/codec.h"
#include "tracing/exporter.h"
#include "tracing/tracer.h"

namespace {

using namespace outrider;

constexpr double micros_per_second = 1e6;

double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / micros_per_second;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int run_sink(std::uint16_t port, bool count_spans) {
  io::runtime rt(1);
  http::server_options so;
  so.listen = "127.0.0.1:" + std::to_string(port);
  so.body_limit = 64 * 1024 * 1024;
  // Counts the spans it receives (OTLP protobuf bodies decoded, so only whole
  // spans count; other bodies count as none): `GET /count` answers
  // {"spans":N,"requests":N,"undecoded":N}, so a bench can check that every
  // span of its run was exported.
  auto spans = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto requests = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto undecoded = std::make_shared<std::atomic<std::uint64_t>>(0);
  http::server server(rt, so, [=](http::request&& req, http::responder r) {
    if (req.method == "GET" && req.path == "/count") {
      r.send(http::response::json(200, "{\"spans\":" + std::to_string(spans->load()) +
                                           ",\"requests\":" + std::to_string(requests->load()) +
                                           ",\"undecoded\":" + std::to_string(undecoded->load()) +
                                           "}"));
      return;
    }
    requests->fetch_add(1);
    if (!count_spans) {
      // --mode exporter: the sink's decoding would load the machine it measures.
    } else if (auto batch = tracing::decode_otlp_protobuf(req.body); batch) {
      spans->fetch_add(batch->spans.size());
    } else {
      undecoded->fetch_add(1);
    }
    r.send(http::response{200, {}, {}});
  });
  rt.start();
  if (auto st = server.start(); !st) {
    std::fprintf(stderr, "sink: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("sink listening on 127.0.0.1:%u\n", server.port());
  std::fflush(stdout);
  io::block_shutdown_signals();
  io::wait_for_shutdown_signal();
  server.stop(std::chrono::seconds(1));
  rt.stop();
  return 0;
}

// A real-time clock for the tracer (no timers needed).
class wall_clock final : public clock {
 public:
  wall_time now() const override { return std::chrono::system_clock::now(); }
  mono_time monotonic_now() const override { return std::chrono::steady_clock::now(); }
  timer_id call_after(nanoseconds, callback) override { return 0; }
  bool cancel(timer_id) override { return false; }
};

int run_exporter(bench::arg_parser& args) {
  const double rate = args.get_double("rate", 100000);
  const double duration_s = args.get_double("duration-s", 10);
  const std::string protocol_name = args.get("protocol", "otlp");
  const auto sink_port = static_cast<std::uint16_t>(args.get_int("sink-port", 0));
  const auto batch_delay_ms = args.get_int("batch-delay-ms", 0);  // 0: the exporter's default
  auto protocol = tracing::parse_export_protocol(protocol_name);
  if (!protocol) args.add_problem(protocol.error().message);
  if (sink_port == 0) args.add_problem("--sink-port is required (a free port for the sink)");
  if (!args.finish()) return 2;

  // The sink runs in a child process so its CPU is not ours. Fork before any thread exists.
  const pid_t child = fork();
  if (child == 0) _exit(run_sink(sink_port, false));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  tracing::exporter_options eo;
  eo.endpoint =
      "http://127.0.0.1:" + std::to_string(sink_port) +
      (*protocol == tracing::export_protocol::zipkin_json ? "/api/v2/spans" : "/v1/traces");
  eo.protocol = *protocol;
  if (batch_delay_ms > 0) eo.batch_delay = std::chrono::milliseconds(batch_delay_ms);
  auto ex = std::make_shared<tracing::exporter>(eo, tracing::make_http_transport(), nullptr);
  if (auto st = ex->start(); !st) {
    std::fprintf(stderr, "exporter: %s\n", st.error().message.c_str());
    kill(child, SIGTERM);
    return 1;
  }
  tracing::tracer tracer({.service_name = "bench", .sampling = 1.0}, ex,
                         std::make_shared<wall_clock>());
  const auto count = static_cast<std::uint64_t>(rate * duration_s);
  double feeder_cpu = 0;
  const double cpu_before = process_cpu_s();
  const std::int64_t start = bench::now_ns();
  std::thread feeder([&] {
    const double t0 = thread_cpu_s();
    bench::rate_pacer pacer(rate);
    tracing::span_context parent;
    parent.trace_id = id128{1, 2};
    parent.span_id = 3;
    parent.flags = tracing::trace_flag_sampled;
    for (std::uint64_t i = 0; i < count; ++i) {
      pacer.wait_for(i);
      auto s = tracer.start_span("process orders", tracing::span_kind::consumer, &parent);
      s.set(tracing::attr::messaging_system, "outrider");
      s.set(tracing::attr::messaging_destination_name, "orders");
      s.set(tracing::attr::messaging_operation_type, "process");
      s.set(tracing::attr::messaging_message_id, "01jq2x8d7k3m4n5p6q7r8s9t0v");
      s.set(tracing::attr::messaging_consumer_group_name, "shipping");
      s.set(tracing::attr::outrider_message_attempt, std::int64_t{1});
      s.set(tracing::attr::http_response_status_code, std::int64_t{200});
      s.set(tracing::attr::server_address, "127.0.0.1");
      s.end();
    }
    feeder_cpu = thread_cpu_s() - t0;
  });
  feeder.join();
  // Let the exporter drain what was queued at the end of the run.
  const auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < drain_deadline) {
    const auto c = ex->stats();
    if (c.exported + c.dropped + c.failed >= count) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double wall_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  const double cpu_s = process_cpu_s() - cpu_before;
  const auto c = ex->stats();
  ex->stop();
  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);

  bench::json_line line;
  line.str("generator", "bench_tracing").str("mode", "exporter").str("protocol", protocol_name);
  line.num("rate_spans_s", rate).num("wall_s", wall_s);
  line.integer("spans", static_cast<std::int64_t>(count));
  line.integer("exported", static_cast<std::int64_t>(c.exported));
  line.integer("dropped", static_cast<std::int64_t>(c.dropped));
  line.integer("failed", static_cast<std::int64_t>(c.failed));
  line.integer("requests", static_cast<std::int64_t>(c.requests));
  line.num("tracer_us_per_span", feeder_cpu * micros_per_second / static_cast<double>(count));
  line.num("exporter_core_percent", 100.0 * (cpu_s - feeder_cpu) / wall_s);
  line.num("exporter_us_per_span",
           (cpu_s - feeder_cpu) * micros_per_second / static_cast<double>(count));
  line.print();
  return 0;
}

int run_encode(bench::arg_parser& args) {
  const std::string protocol_name = args.get("protocol", "otlp");
  const auto batches = args.get_int("batches", 200);
  auto protocol = tracing::parse_export_protocol(protocol_name);
  if (!protocol) args.add_problem(protocol.error().message);
  if (!args.finish()) return 2;
  // Keeps what the tracer records: the compact records (what the exporter
  // encodes) and the same spans in the full model (what app spans look like).
  struct keep final : tracing::span_sink {
    std::vector<tracing::span> spans;
    std::vector<tracing::recorded_span_ptr> recorded;
    void export_span(tracing::span&& s) override { spans.push_back(std::move(s)); }
    void export_recorded(tracing::recorded_span_ptr s) override {
      spans.push_back(s->to_span());
      recorded.push_back(std::move(s));
    }
  };
  auto sink = std::make_shared<keep>();
  tracing::tracer tracer({.service_name = "bench"}, sink, std::make_shared<wall_clock>());
  constexpr int batch_size = 512;
  for (int i = 0; i < batch_size; ++i) {
    auto s = tracer.start_span("process orders", tracing::span_kind::consumer, nullptr);
    s.set(tracing::attr::messaging_system, "outrider");
    s.set(tracing::attr::messaging_destination_name, "orders");
    s.set(tracing::attr::messaging_operation_type, "process");
    s.set(tracing::attr::messaging_message_id, "01jq2x8d7k3m4n5p6q7r8s9t0v");
    s.set(tracing::attr::messaging_consumer_group_name, "shipping");
    s.set(tracing::attr::outrider_message_attempt, std::int64_t{1});
    s.set(tracing::attr::http_response_status_code, std::int64_t{200});
    s.set(tracing::attr::server_address, "127.0.0.1");
  }
  std::size_t bytes = 0;
  const double t0 = thread_cpu_s();
  for (std::int64_t b = 0; b < batches; ++b)
    bytes += tracing::encode_batch(*protocol, sink->spans).size();
  const double cpu = thread_cpu_s() - t0;
  // Recorded spans, as the exporter encodes them (straight from the records, every protocol).
  const std::vector<tracing::span> none;
  std::size_t recorded_bytes = 0;
  const double t1 = thread_cpu_s();
  for (std::int64_t b = 0; b < batches; ++b)
    recorded_bytes += tracing::encode_batch(*protocol, sink->recorded, none).size();
  const double recorded_cpu = thread_cpu_s() - t1;
  // The same with cold records, as in the exporter: each batch's records were
  // just written by another thread (the request threads write them), so the
  // encoder reads them from the other core's cache.
  double cold_cpu = 0;
  for (std::int64_t b = 0; b < batches; ++b) {
    std::thread writer([&] {
      for (auto& r : sink->recorded) *r = tracing::recorded_span(*r);
    });
    writer.join();
    const double t = thread_cpu_s();
    recorded_bytes += tracing::encode_batch(*protocol, sink->recorded, none).size();
    cold_cpu += thread_cpu_s() - t;
  }
  bench::json_line line;
  line.str("generator", "bench_tracing").str("mode", "encode").str("protocol", protocol_name);
  line.num("us_per_span", cpu * micros_per_second / static_cast<double>(batches * batch_size));
  line.integer("bytes_per_batch",
               static_cast<std::int64_t>(bytes / static_cast<std::size_t>(batches)));
  line.num("recorded_us_per_span",
           recorded_cpu * micros_per_second / static_cast<double>(batches * batch_size));
  line.integer("recorded_bytes_per_batch",
               static_cast<std::int64_t>(recorded_bytes / static_cast<std::size_t>(2 * batches)));
  line.num("cold_recorded_us_per_span",
           cold_cpu * micros_per_second / static_cast<double>(batches * batch_size));
  line.print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  const std::string mode = args.get("mode", "exporter");
  if (mode == "sink") {
    const auto port = args.get_int("port", 0);
    if (!args.finish()) return 2;
    return run_sink(static_cast<std::uint16_t>(port), true);
  }
  if (mode == "encode") return run_encode(args);
  if (mode != "exporter") {
    args.add_problem("--mode must be exporter, encode or sink");
    args.finish();
    return 2;
  }
  return run_exporter(args);
}
