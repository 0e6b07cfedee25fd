// bench_outrider_queue: the Outrider broker side of the queue suites, with the
// same CLI and JSON report as bench_redis / bench_rabbitmq (docs/benchmarks.md).
// One producer connection and one consumer connection, each on its own I/O
// thread; publishes are pipelined batches with at most --inflight messages
// unconfirmed (confirm = durable); the consumer holds --prefetch credit and
// acks each delivery.
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "broker_client/client.h"
#include "common/driver.h"

namespace {

using namespace outrider;
namespace bc = outrider::broker_client;
constexpr double ns_per_s = 1e9;

// A client on its own I/O thread.
class connection {
 public:
  explicit connection(const std::string& address)
      : guard_(ctx_.get_executor()), thread_([this] { ctx_.run(); }) {
    bc::client_options o;
    o.address = address;
    o.client_name = "bench_outrider_queue";
    o.max_in_flight_batches = 1024;
    client_ = bc::client::create(ctx_, o);
    std::promise<status> p;
    client_->connect([&](status s) { p.set_value(std::move(s)); });
    status s = p.get_future().get();
    if (!s)
      std::fprintf(stderr, "bench_outrider_queue: connect %s: %s\n", address.c_str(),
                   s.error().message.c_str());
    ok_ = static_cast<bool>(s);
  }
  ~connection() {
    client_->close();
    guard_.reset();
    thread_.join();
  }
  bool ok() const { return ok_; }
  bc::client& get() { return *client_; }

 private:
  boost::asio::io_context ctx_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::shared_ptr<bc::client> client_;
  bool ok_ = false;
};

// At most `limit` messages unconfirmed.
class window {
 public:
  explicit window(std::int64_t limit) : free_(limit) {}
  void acquire(std::int64_t n) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return free_ >= n; });
    free_ -= n;
  }
  void release(std::int64_t n) {
    {
      std::lock_guard lock(m_);
      free_ += n;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::int64_t free_;
};

struct consumer_state {
  std::mutex m;
  std::condition_variable cv;
  std::int64_t consumed = 0;
  std::int64_t early = 0;
  std::int64_t last_ns = 0;
  bench::latency_samples latency;
};

int run(const bench::common_options& options) {
  const std::string address = options.host + ":" + std::to_string(options.port);
  const std::string queue =
      "bench." + std::to_string(::getpid()) + "." + std::to_string(bench::now_ns());
  const bool delayed = options.mode == "delayed";
  const std::int64_t count = options.mode == "latency"
                                 ? static_cast<std::int64_t>(options.rate * options.duration_s)
                                 : options.messages;
  // Everything the clients' callbacks touch is declared before the connections, so it outlives
  // them: a connection's destructor closes its client and joins its I/O thread, and a client
  // that lost its broker fails every pending call on that thread, possibly after run() decided
  // to return (the load generator used to crash there when the broker died under load).
  consumer_state state;
  window unconfirmed(options.inflight);
  std::atomic<bool> failed{false};
  std::atomic<std::int64_t> confirmed{0};
  std::promise<void> all_confirmed;
  auto fail = [&state, &failed](const char* what, const std::string& why) {
    std::fprintf(stderr, "bench_outrider_queue: %s: %s\n", what, why.c_str());
    failed = true;
    std::lock_guard lock(state.m);
    state.cv.notify_all();
  };
  connection producer(address);
  connection consumer(address);
  if (!producer.ok() || !consumer.ok()) return 1;
  producer.get().on_disconnect([&](error e) { fail("producer connection lost", e.message); });
  consumer.get().on_disconnect([&](error e) { fail("consumer connection lost", e.message); });
  {
    std::promise<status> p;
    producer.get().declare_queue(queue, {}, [&](status s) { p.set_value(std::move(s)); });
    if (auto s = p.get_future().get(); !s) {
      std::fprintf(stderr, "bench_outrider_queue: declare: %s\n", s.error().message.c_str());
      return 1;
    }
  }
  bench::rss_sampler rss(options.server_pid);

  // Delayed, large mode: only the near messages come due during the run.
  const std::int64_t expected = delayed ? bench::near_messages(options) : count;
  state.latency.reserve(static_cast<std::size_t>(expected));
  bc::client* consumer_client = &consumer.get();
  std::promise<result<bc::subscription_id>> subscribed;
  consumer.get().subscribe(
      bc::subscribe_request{queue, static_cast<std::uint32_t>(options.prefetch), {}},
      [&state, consumer_client, delayed](bc::delivery d) {
        const auto now = bench::now_ns();
        bench::payload_header h;
        bench::read_payload(d.body, h);
        consumer_client->ack({d.tag}, nullptr);
        std::lock_guard lock(state.m);
        if (delayed) {
          const auto lag_us = bench::wall_us() - h.due_us;
          if (lag_us < 0) ++state.early;
          state.latency.add(std::max<std::int64_t>(lag_us, 0) * 1000);
        } else {
          state.latency.add(now - h.sent_ns);
        }
        ++state.consumed;
        state.last_ns = now;
        state.cv.notify_all();
      },
      [&](result<bc::subscription_id> r) { subscribed.set_value(std::move(r)); });
  if (auto r = subscribed.get_future().get(); !r) {
    std::fprintf(stderr, "bench_outrider_queue: subscribe: %s\n", r.error().message.c_str());
    return 1;
  }

  // Throughput and delayed: batches of inflight/4 so that several batches share
  // the pipeline (one fsync each) while staying within the unconfirmed limit.
  const std::int64_t batch_size =
      options.mode == "latency" ? 1 : std::max<std::int64_t>(1, options.inflight / 4);
  std::unique_ptr<bench::rate_pacer> pacer;
  if (options.mode == "latency") pacer = std::make_unique<bench::rate_pacer>(options.rate);
  bench::due_schedule schedule(options);
  const auto start = bench::now_ns();
  std::string body;
  for (std::int64_t i = 0; i < count && !failed; i += batch_size) {
    const std::int64_t n = std::min(batch_size, count - i);
    unconfirmed.acquire(n);
    std::vector<bc::outgoing_message> batch;
    batch.reserve(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) {
      bench::payload_header h;
      h.sequence = i + j;
      h.sent_ns = pacer ? pacer->wait_for(static_cast<std::uint64_t>(i + j)) : bench::now_ns();
      bc::outgoing_message m;
      m.destination = queue;
      if (delayed) {
        h.due_us = schedule.due_us(i + j);
        m.deliver_at = wall_time{std::chrono::microseconds(h.due_us)};
      }
      bench::write_payload(body, static_cast<std::size_t>(options.size), h);
      m.body = body;
      batch.push_back(std::move(m));
    }
    producer.get().publish(std::move(batch), [&, n](result<std::vector<bc::publish_result>> r) {
      if (!r) {
        fail("publish", r.error().message);
      } else {
        for (const auto& m : *r) {
          if (!m.outcome) fail("publish", m.outcome.error().message);
        }
      }
      unconfirmed.release(n);
      if ((confirmed += n) == count) all_confirmed.set_value();
    });
  }
  // Every batch gets its callback (confirmed or failed), so this returns either way.
  if (!failed) all_confirmed.get_future().wait();
  const double schedule_rate =
      static_cast<double>(count) / (static_cast<double>(bench::now_ns() - start) / ns_per_s);

  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<std::int64_t>(options.timeout_s * 1000));
  std::unique_lock lock(state.m);
  state.cv.wait_until(lock, deadline, [&] { return state.consumed >= expected || failed; });
  const auto peak_rss = rss.peak_bytes();
  if (failed) return 1;

  auto line = bench::report_header(options, "bench_outrider_queue");
  line.integer("messages", count).integer("consumed", state.consumed);
  line.integer("missing", expected - state.consumed);
  if (delayed) line.integer("pending_far", count - expected);
  const double elapsed_s = static_cast<double>(state.last_ns - start) / ns_per_s;
  line.num("elapsed_s", elapsed_s);
  if (delayed) {
    line.num("window_s", options.window_s).num("schedule_rate_msg_s", schedule_rate);
    line.raw("fire_lag_ms", state.latency.percentiles_json()).integer("early", state.early);
  } else {
    line.num("throughput_msg_s", static_cast<double>(state.consumed) / elapsed_s);
    line.raw("latency_ms", state.latency.percentiles_json());
    if (options.mode == "latency") line.num("rate_msg_s", options.rate);
  }
  line.integer("server_peak_rss_bytes", peak_rss);
  line.print();
  return state.consumed == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  auto options = bench::parse_common(args, "outrider");
  if (!args.finish()) return 2;
  return run(options);
}
