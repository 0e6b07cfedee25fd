// bench_rabbitmq_delayed: delayed delivery on RabbitMQ through Outrider's
// rabbitmq backend (binary delay levels + the due-queue consumer,
// docs/rabbitmq.md). Schedules --messages 1 KiB messages whose due times are
// spread evenly over --window-s seconds (starting --lead-s from now), consumes
// them and reports the schedule rate and the firing lag (receipt - due time)
// percentiles, and how many fired early (must be 0).
//   bench_rabbitmq_delayed --port AMQP_PORT [--messages 100000 --window-s 60 --lead-s 10]
#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "backends/rabbitmq/rabbitmq_backend.h"
#include "common/driver.h"

namespace {

using namespace outrider;
using namespace std::chrono_literals;

int run(bench::arg_parser& args) {
  const auto port = args.get_int("port", 0);
  const auto messages = args.get_int("messages", 100000);
  const double spread_s = args.get_double("window-s", 60);
  const double lead_s = args.get_double("lead-s", 10);
  const auto size = args.get_int("size", 1024);
  const std::string label = args.get("label", "outrider-rabbitmq-delayed");
  const std::string queue_type = args.get("queue-type", "quorum");
  // Accepted for bench/run's delayed suite (same workload flags as the other generators).
  (void)args.get("server-pid", "");
  (void)args.get("mode", "delayed");
  (void)args.get("inflight", "");
  (void)args.get("prefetch", "");
  (void)args.get("timeout-s", "");
  if (port <= 0) args.add_problem("--port is required");
  if (!args.finish()) return 2;

  backends::rabbitmq_backend_options o;
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/";
  o.queue_type = queue_type;
  o.delay_queue_type = queue_type;
  auto b = std::make_shared<backends::rabbitmq_backend>(o);

  std::mutex mutex;
  bench::latency_samples lag;
  lag.reserve(static_cast<std::size_t>(messages));
  std::int64_t early = 0;
  std::atomic<std::int64_t> received{0};
  const std::string topic = "delayed-bench";
  std::promise<result<backends::subscription_handle>> subscribed;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    subscribed = {};
    b->subscribe(
        {topic, "bench", 0, 60s, 1000},
        [&](backends::delivery d) {
          const auto* due = backends::find_header(d.headers, "due-ns");
          const std::int64_t due_ns = due != nullptr ? std::stoll(*due) : 0;
          const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
          {
            std::lock_guard lock(mutex);
            if (now < due_ns) ++early;
            lag.add(std::max<std::int64_t>(0, now - due_ns));
          }
          ++received;
          b->settle(d.handle, backends::settle_action::ack(), nullptr);
        },
        [&](result<backends::subscription_handle> r) { subscribed.set_value(std::move(r)); });
    auto r = subscribed.get_future().get();
    if (r.ok()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "bench_rabbitmq_delayed: %s\n", r.error().message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(100ms);
  }

  const std::string body(static_cast<std::size_t>(size), 'x');
  const auto first_due =
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double>(lead_s));
  const double step_ns = spread_s * 1e9 / static_cast<double>(messages);
  constexpr std::int64_t batch_size = 100;
  constexpr int window = 8;  // batches awaiting confirms
  std::atomic<int> in_flight{0};
  std::atomic<std::int64_t> failures{0};
  const std::int64_t start = bench::now_ns();
  for (std::int64_t i = 0; i < messages; i += batch_size) {
    while (in_flight >= window) std::this_thread::sleep_for(100us);
    std::vector<backends::message> batch;
    for (std::int64_t j = i; j < std::min(messages, i + batch_size); ++j) {
      const auto due =
          first_due + nanoseconds(static_cast<std::int64_t>(static_cast<double>(j) * step_ns));
      const auto due_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
      batch.push_back(backends::message{topic,
                                        {},
                                        {{"due-ns", std::to_string(due_ns)}},
                                        body,
                                        std::chrono::time_point_cast<wall_time::duration>(due)});
    }
    ++in_flight;
    b->publish(std::move(batch), [&](result<std::vector<backends::publish_outcome>> r) {
      if (!r) {
        failures += batch_size;
      } else {
        for (auto& o2 : *r) failures += o2.outcome.ok() ? 0 : 1;
      }
      --in_flight;
    });
  }
  while (in_flight > 0) std::this_thread::sleep_for(1ms);
  const double schedule_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  const auto last = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<nanoseconds>(
                        std::chrono::duration<double>(lead_s + spread_s + 120));
  while (received < messages - failures && std::chrono::steady_clock::now() < last) {
    std::this_thread::sleep_for(10ms);
  }
  b->close();
  bench::json_line line;
  std::lock_guard lock(mutex);
  line.str("generator", "bench_rabbitmq_delayed").str("system", label);
  line.integer("messages", messages).integer("failures", failures).integer("received", received);
  line.integer("early", early)
      .num("schedule_rate_msg_s", static_cast<double>(messages) / schedule_s);
  line.raw("fire_lag_ms", lag.percentiles_json());
  line.print();
  return (failures == 0 && early == 0 && received == messages) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  return run(args);
}
