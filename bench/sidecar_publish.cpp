// bench_sidecar_publish: the cost the sidecar adds to a publish. Publishes 1 KiB
// messages at a fixed rate, either through the
// sidecar's Dapr API (POST /v1.0/publish/{pubsub}/{topic} -> 204 once durable)
// or directly with the broker client (PUBLISH -> CONFIRM once durable), open
// loop (calls start on schedule, concurrently), and reports call latency
// percentiles from each call's intended start. Run both modes against the same broker
// in one session and compare (bench/run's sidecar-publish suite will drive it).
//   bench_sidecar_publish --via sidecar --port SIDECAR_PORT [--pubsub pubsub]
//   bench_sidecar_publish --via direct --port BROKER_PORT
//   common: --rate 1000 --duration-s 10 --size 1024 --topic bench
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <future>
#include <thread>

#include "broker_client/client.h"
#include "common/driver.h"
#include "http/client.h"

namespace {

using namespace outrider;
namespace bc = outrider::broker_client;

int run(bench::arg_parser& args) {
  const std::string via = args.get("via", "sidecar");
  const std::string host = args.get("host", "127.0.0.1");
  const auto port = args.get_int("port", 0);
  const std::string pubsub = args.get("pubsub", "pubsub");
  const std::string topic = args.get("topic", "bench");
  const double rate = args.get_double("rate", 1000);
  const double duration_s = args.get_double("duration-s", 10);
  const auto size = args.get_int("size", 1024);
  const std::string label = args.get("label", "outrider-" + via);
  if (via != "sidecar" && via != "direct") args.add_problem("--via must be sidecar or direct");
  if (port <= 0) args.add_problem("--port is required");
  if (!args.finish()) return 2;

  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard(
      ctx.get_executor());
  std::thread io([&] { ctx.run(); });
  const std::string body =
      "\"" + std::string(static_cast<std::size_t>(std::max<std::int64_t>(size - 2, 0)), 'x') + "\"";

  std::function<void(std::function<void(bool)>)> publish_one;
  std::unique_ptr<http::client> web;
  std::shared_ptr<bc::client> broker;
  http::url target;
  if (via == "sidecar") {
    web = std::make_unique<http::client>(ctx);
    target = *http::url::parse("http://" + host + ":" + std::to_string(port) + "/v1.0/publish/" +
                               pubsub + "/" + topic);
    publish_one = [&](std::function<void(bool)> done) {
      http::request req;
      req.method = "POST";
      req.headers.set("Content-Type", "application/json");
      req.body = body;
      web->send(
          target, std::move(req), std::chrono::seconds(10),
          [done = std::move(done)](result<http::response> r) { done(r && r->status == 204); });
    };
  } else {
    bc::client_options o;
    o.address = host + ":" + std::to_string(port);
    broker = bc::client::create(ctx, o);
    std::promise<status> connected;
    broker->connect([&](status s) { connected.set_value(std::move(s)); });
    if (!connected.get_future().get()) {
      std::fprintf(stderr, "bench_sidecar_publish: cannot connect to the broker\n");
      guard.reset();
      io.join();
      return 1;
    }
    std::promise<status> declared;
    broker->declare_topic(topic, [&](status s) { declared.set_value(std::move(s)); });
    (void)declared.get_future().get();
    publish_one = [&](std::function<void(bool)> done) {
      std::vector<bc::outgoing_message> batch(1);
      batch[0].destination = topic;
      batch[0].headers = {{"content-type", "application/json"}};
      batch[0].body = body;
      broker->publish(std::move(batch),
                      [done = std::move(done)](result<std::vector<bc::publish_result>> r) {
                        done(r && (*r)[0].outcome);
                      });
    };
  }

  // Warm up (connections, pools), then the timed fixed-rate run, one call at a time.
  for (int i = 0; i < 200; ++i) {
    std::promise<bool> p;
    publish_one([&](bool ok) { p.set_value(ok); });
    if (!p.get_future().get()) {
      std::fprintf(stderr, "bench_sidecar_publish: warm-up publish failed\n");
      guard.reset();
      ctx.stop();
      io.join();
      return 1;
    }
  }
  // Open loop: calls start on the fixed-rate schedule whether or not earlier ones
  // finished (latency from the intended start, so a backlog shows). Completions
  // run on the I/O thread, the only writer of `latency` until `all_done`.
  const auto count = static_cast<std::int64_t>(rate * duration_s);
  bench::rate_pacer pacer(rate);
  bench::latency_samples latency;
  latency.reserve(static_cast<std::size_t>(count));
  std::int64_t failures = 0;
  std::int64_t completed = 0;
  std::promise<void> all_done;
  const auto start = bench::now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto intended = pacer.wait_for(static_cast<std::uint64_t>(i));
    boost::asio::post(ctx, [&, intended] {
      publish_one([&, intended](bool ok) {
        latency.add(bench::now_ns() - intended);
        if (!ok) ++failures;
        if (++completed == count) all_done.set_value();
      });
    });
  }
  all_done.get_future().wait();
  const double elapsed_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  guard.reset();
  if (broker) broker->close();
  web.reset();
  ctx.stop();
  io.join();
  bench::json_line line;
  line.str("generator", "bench_sidecar_publish").str("system", label).str("via", via);
  line.integer("size", size).integer("messages", count).integer("failures", failures);
  line.num("rate_msg_s", rate).num("elapsed_s", elapsed_s);
  line.raw("latency_ms", latency.percentiles_json());
  line.print();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  return run(args);
}
