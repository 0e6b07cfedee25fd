// bench_nats: NATS JetStream load generator (libnats). One producer publishes asynchronously
// (js_PublishAsync) with at most --inflight publishes awaiting their JetStream ack; one consumer
// fetches batches of --prefetch from a durable pull consumer and acks each message. The stream
// uses the file store; nats-server 2.9 does not fsync per message (relaxed durability, see
// bench/peers/nats.conf). Mode `delayed` is not offered: NATS 2.9 has no delayed delivery.
#include <nats/nats.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "common/driver.h"

namespace {

constexpr std::int64_t fetch_timeout_ms = 500;
constexpr std::int64_t publish_stall_ms = 5000;
constexpr double ns_per_s = 1e9;

bool ok(natsStatus status, const char* what) {
  if (status == NATS_OK) return true;
  std::fprintf(stderr, "error: %s: %s\n", what, natsStatus_GetText(status));
  return false;
}

struct consumer_result {
  bench::latency_samples latency;
  std::int64_t consumed = 0;
  std::int64_t last_ns = 0;
  bool ok = true;
};

std::atomic<std::int64_t> publish_errors{0};

void on_publish_error(jsCtx*, jsPubAckErr* error, void*) {
  ++publish_errors;
  std::fprintf(stderr, "error: publish: %s\n", error->ErrText ? error->ErrText : "no ack");
}

void consume(jsCtx* js, const std::string& subject, const std::string& durable,
             const bench::common_options& options, std::int64_t expected, consumer_result& result) {
  natsSubscription* subscription = nullptr;
  jsErrCode code{};
  if (!ok(js_PullSubscribe(&subscription, js, subject.c_str(), durable.c_str(), nullptr, nullptr,
                           &code),
          "pull subscribe")) {
    result.ok = false;
    return;
  }
  result.latency.reserve(static_cast<std::size_t>(expected));
  auto deadline = bench::now_ns() + static_cast<std::int64_t>(options.timeout_s * ns_per_s);
  bench::payload_header header;
  while (result.consumed < expected && bench::now_ns() < deadline) {
    natsMsgList list{};
    natsStatus status = natsSubscription_Fetch(
        &list, subscription, static_cast<int>(options.prefetch), fetch_timeout_ms, &code);
    if (status == NATS_TIMEOUT) continue;
    if (!ok(status, "fetch")) {
      result.ok = false;
      break;
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* message = list.Msgs[i];
      std::string_view body(natsMsg_GetData(message),
                            static_cast<std::size_t>(natsMsg_GetDataLength(message)));
      if (bench::read_payload(body, header)) {
        auto now = bench::now_ns();
        result.latency.add(now - header.sent_ns);
        result.last_ns = now;
        ++result.consumed;
      }
      natsMsg_Ack(message, nullptr);
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(subscription);
}

int run(const bench::common_options& options) {
  if (options.mode == "delayed") {
    std::fprintf(stderr, "error: NATS 2.9 has no delayed delivery; mode delayed is not offered\n");
    return 2;
  }
  natsConnection* connection = nullptr;
  auto url = "nats://" + options.host + ":" + std::to_string(options.port);
  if (!ok(natsConnection_ConnectTo(&connection, url.c_str()), "connect")) return 1;
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.PublishAsync.MaxPending = options.inflight;
  js_options.PublishAsync.ErrHandler = on_publish_error;
  js_options.PublishAsync.StallWait = publish_stall_ms;
  jsCtx* js = nullptr;
  if (!ok(natsConnection_JetStream(&js, connection, &js_options), "jetstream")) return 1;

  auto unique = std::to_string(::getpid()) + "_" + std::to_string(bench::now_ns());
  std::string stream = "BENCH_" + unique;
  std::string subject = "bench." + unique;
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  jsErrCode code{};
  if (!ok(js_AddStream(nullptr, js, &config, nullptr, &code), "add stream")) return 1;

  bench::rss_sampler rss(options.server_pid);
  std::int64_t count = options.mode == "latency"
                           ? static_cast<std::int64_t>(options.rate * options.duration_s)
                           : options.messages;
  consumer_result consumed;
  std::thread consumer([&] { consume(js, subject, "bench", options, count, consumed); });
  std::unique_ptr<bench::rate_pacer> pacer;
  if (options.mode == "latency") pacer = std::make_unique<bench::rate_pacer>(options.rate);
  auto start = bench::now_ns();
  bool produced = true;
  std::string body;
  for (std::int64_t i = 0; produced && i < count; ++i) {
    bench::payload_header header;
    header.sequence = i;
    header.sent_ns = pacer ? pacer->wait_for(static_cast<std::uint64_t>(i)) : bench::now_ns();
    bench::write_payload(body, static_cast<std::size_t>(options.size), header);
    produced = ok(
        js_PublishAsync(js, subject.c_str(), body.data(), static_cast<int>(body.size()), nullptr),
        "publish");
  }
  if (produced) produced = ok(js_PublishAsyncComplete(js, nullptr), "publish complete");
  consumer.join();
  auto peak_rss = rss.peak_bytes();
  js_DeleteStream(js, stream.c_str(), nullptr, nullptr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  if (!produced || !consumed.ok || publish_errors.load() > 0) return 1;

  auto line = bench::report_header(options, "bench_nats");
  line.integer("messages", count).integer("consumed", consumed.consumed);
  line.integer("missing", count - consumed.consumed);
  double elapsed_s = static_cast<double>(consumed.last_ns - start) / ns_per_s;
  line.num("elapsed_s", elapsed_s);
  line.num("throughput_msg_s", static_cast<double>(consumed.consumed) / elapsed_s);
  line.raw("latency_ms", consumed.latency.percentiles_json());
  if (pacer) line.num("rate_msg_s", options.rate);
  line.integer("server_peak_rss_bytes", peak_rss);
  line.print();
  return consumed.consumed == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  auto options = bench::parse_common(args, "nats-jetstream");
  if (!args.finish()) return 2;
  int status = run(options);
  nats_Close();
  return status;
}
