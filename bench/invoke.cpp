// bench_invoke: the cost of service invocation through two sidecars. POSTs
// 1 KiB bodies at a fixed rate to one URL, open loop (calls start on
// schedule, concurrently), and reports latency percentiles from each call's
// intended start. bench/run's `invoke` suite runs it twice in one session:
// directly against the app, and as app -> sidecar -> sidecar -> app
// (http://127.0.0.1:SIDECAR/v1.0/invoke/APP/method/).
//   bench_invoke --url URL [--rate 1000] [--duration-s 10] [--size 1024] [--label NAME]
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <future>
#include <thread>

#include "common/driver.h"
#include "http/client.h"

namespace {

using namespace outrider;

int run(bench::arg_parser& args) {
  const std::string url_text = args.get("url", "");
  const double rate = args.get_double("rate", 1000);
  const double duration_s = args.get_double("duration-s", 10);
  const auto size = args.get_int("size", 1024);
  const std::string label = args.get("label", "invoke");
  auto target = http::url::parse(url_text);
  if (!target) args.add_problem("--url must be an http:// URL");
  if (!args.finish()) return 2;

  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard(
      ctx.get_executor());
  std::thread io([&] { ctx.run(); });
  const std::string body(static_cast<std::size_t>(size), 'x');
  http::client web(ctx);
  auto call_one = [&](std::function<void(bool)> done) {
    http::request req;
    req.method = "POST";
    req.headers.set("Content-Type", "application/octet-stream");
    req.body = body;
    web.send(*target, std::move(req), std::chrono::seconds(10),
             [done = std::move(done)](result<http::response> r) { done(r && r->status == 200); });
  };
  for (int i = 0; i < 200; ++i) {
    std::promise<bool> p;
    boost::asio::post(ctx, [&] { call_one([&](bool ok) { p.set_value(ok); }); });
    if (!p.get_future().get()) {
      std::fprintf(stderr, "bench_invoke: warm-up call to %s failed\n", url_text.c_str());
      guard.reset();
      ctx.stop();
      io.join();
      return 1;
    }
  }
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
      call_one([&, intended](bool ok) {
        latency.add(bench::now_ns() - intended);
        if (!ok) ++failures;
        if (++completed == count) all_done.set_value();
      });
    });
  }
  all_done.get_future().wait();
  const double elapsed_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  guard.reset();
  ctx.stop();
  io.join();
  bench::json_line line;
  line.str("generator", "bench_invoke").str("system", label);
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
