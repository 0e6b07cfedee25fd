// bench_sidecar_publish: the cost the sidecar adds to a publish. Publishes 1 KiB
// messages at a fixed rate, either through the
// sidecar's Dapr API (POST /v1.0/publish/{pubsub}/{topic} -> 204 once durable)
// or directly with the broker client (PUBLISH -> CONFIRM once durable), open
// loop (calls start on schedule, concurrently), and reports call latency
// percentiles from each call's intended start.
//   bench_sidecar_publish --via sidecar --port SIDECAR_PORT [--pubsub pubsub]
//   bench_sidecar_publish --via direct --port BROKER_PORT
//   bench_sidecar_publish --via alternate|interleave --port SIDECAR_PORT --broker-port BROKER_PORT
//       [--rounds 4] [--pause-s 1] [--sidecar-pid PID]
//   common: --rate 1000 --duration-s 10 --size 1024 --topic bench --connections 128
//   interleave: [--direct-topic TOPIC-direct] [--stagger false]
//           [--traceparent true] [--relay-port PORT | --relay-address unix:/PATH]
//           [--relay-pid PID] [--relay-topic T]
//
// --relay-port (interleave only): a third path, the direct path's broker client connected
// through a zero-work relay (bench_tcp_relay in front of the broker), publishing to
// --relay-topic (default `<topic>-relay`, not delivered), interleaved on the same schedule
// (each tick's three calls start in one of the 6 orders in turn). Its added latency over
// direct is the floor of any process in the middle on this machine (two loopback hops, two
// wake-ups, no work); the sidecar's added minus the relay's (`own_*`) is the sidecar's own
// part. Reported per round and as spreads: relay_added_p50/p99 (relay minus direct),
// own_added_p50/p99 (sidecar minus relay), the paired differences per tick of both, and
// with --relay-pid the relay's CPU per relayed publish.
//
// --traceparent: each sidecar call carries a W3C traceparent (a new sampled trace id per
// call, as from an instrumented app), so a sidecar propagates an existing context
// instead of starting a trace (and propagates it with tracing off too).
//
// `alternate` is the comparison bench/run makes: `rounds` rounds, each a direct
// phase and a sidecar phase of duration-s (the order swaps every round: direct
// first in odd rounds, sidecar first in even ones, so a drift of the machine's
// load over the run hits both sides alike), with `pause-s` after each phase for
// the sidecar to finish delivering it. It reports both sides' percentiles over
// all their samples, each round's percentiles, and the added p50/p99 of each
// round (sidecar minus direct of the same round) with their median, quartiles
// and range. With --sidecar-pid, the sidecar's CPU (user + system, /proc) per
// message of each phase, measured from the phase's start to the end of its
// pause, so the deliveries of the phase's messages count in it.
//
// `interleave` (what bench/run uses): `rounds` phases of duration-s in which both
// paths publish, each at the full --rate, on the same schedule: at every tick one
// direct and one sidecar call share the intended start (which of the two is
// started first swaps every tick), so both meet the same broker at the same
// moment: the same group commit, the same fsync stall, the same load on the
// machine. Open loop as above, latency from the intended start. The direct path
// publishes to --direct-topic (default `<topic>-direct`), which the sidecar does
// not deliver: the sidecar delivers the rate (its own path's messages), as in the
// alternate mode, while the broker takes twice the rate. Per round: each
// side's percentiles, added p50/p99 (sidecar minus direct of the same phase), and
// the paired differences (sidecar minus direct latency of the same tick) at p50
// and p99. With --sidecar-pid: the sidecar's CPU per tick (one publish and its
// delivery) and, apart, its threads other than the one named `deliveries`
// per sidecar publish (the API and publish path).
// --stagger true: the sidecar's call of tick i starts half a period after the
// direct one (each path evenly spaced at the rate, each call half a period
// from the other path's calls) instead of at the same moment, so the two paths'
// publishes of a tick do not meet in one group commit; a stall of the broker
// longer than half a period still delays both.
//
// HTTP connections: at most --connections calls (default 128) are outstanding,
// each on a keep-alive connection the generator keeps for reuse (opened when
// first needed, never closed before the end: the client keeps up to
// `connections` idle ones); a call due while all are busy waits in the
// generator (its latency still counts from its intended start). Before, the
// generator opened a connection per outstanding call and closed those beyond
// the client's 64 idle ones after one call each: at 5k msg/s a short stall
// turned into thousands of connects and TIME_WAIT sockets (connect() searching
// for a free ephemeral port, __inet_check_established), and the generator, not
// the sidecar, saturated. Connections are not opened ahead: each costs the
// sidecar ~14 KiB of RSS, and the RSS at 1k msg/s is one of the figures.
#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "broker_client/client.h"
#include "common/driver.h"
#include "http/client.h"

namespace {

using namespace outrider;
namespace bc = outrider::broker_client;

constexpr double ns_per_ms = 1e6;

using publish_fn = std::function<void(std::function<void(bool)>)>;

// User + system CPU seconds of process `pid` so far; 0 when it cannot be read.
double cpu_seconds(long pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  long long utime = 0;
  long long stime = 0;
  for (int i = 0; i < 13 && fields >> field; ++i) {
    if (i == 11) utime = std::stoll(field);
    if (i == 12) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// User + system CPU seconds of the threads of `pid` named (or, with `other`,
// not named) `name`; 0 when they cannot be read.
double thread_cpu_seconds(long pid, const std::string& name, bool other) {
  if (pid <= 0) return 0;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(task_dir, ec)) {
    std::ifstream comm_in(entry.path() / "comm");
    std::string comm;
    std::getline(comm_in, comm);
    if ((comm == name) == other) continue;
    std::ifstream in(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 2));
    std::string field;
    long long ticks = 0;
    for (int i = 0; i < 13 && fields >> field; ++i) {
      if (i == 11 || i == 12) ticks += std::stoll(field);
    }
    total += static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return total;
}

// Percentile of sorted nanosecond samples (nearest rank, as bench::latency_samples), in ms.
double quantile_ms(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / ns_per_ms;
}

struct phase_result {
  std::vector<std::int64_t> samples;  // sorted after the phase
  std::int64_t failures = 0;
  double elapsed_s = 0;
  double cpu_us_per_msg = 0;
};

// One fixed-rate open-loop phase: calls start on schedule whether or not earlier
// ones finished (latency from the intended start, so a backlog shows).
// Completions run on the I/O thread, the only writer of the result until done.
phase_result run_phase(boost::asio::io_context& ctx, const publish_fn& publish_one, double rate,
                       double duration_s, double pause_s, long sidecar_pid) {
  const auto count = static_cast<std::int64_t>(rate * duration_s);
  phase_result out;
  out.samples.reserve(static_cast<std::size_t>(count));
  std::int64_t completed = 0;
  std::promise<void> all_done;
  const double cpu_before = cpu_seconds(sidecar_pid);
  bench::rate_pacer pacer(rate);
  const auto start = bench::now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto intended = pacer.wait_for(static_cast<std::uint64_t>(i));
    boost::asio::post(ctx, [&, intended] {
      publish_one([&, intended](bool ok) {
        out.samples.push_back(bench::now_ns() - intended);
        if (!ok) ++out.failures;
        if (++completed == count) all_done.set_value();
      });
    });
  }
  if (count > 0) all_done.get_future().wait();
  out.elapsed_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  if (pause_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(pause_s));
  out.cpu_us_per_msg = (cpu_seconds(sidecar_pid) - cpu_before) * 1e6 /
                       static_cast<double>(std::max<std::int64_t>(count, 1));
  std::sort(out.samples.begin(), out.samples.end());
  return out;
}

struct interleaved_result {
  phase_result direct;
  phase_result sidecar;
  phase_result relay;                              // empty without a relay path
  std::vector<std::int64_t> paired;                // sidecar minus direct latency per tick, sorted
  std::vector<std::int64_t> paired_relay;          // relay minus direct per tick, sorted
  std::vector<std::int64_t> paired_sidecar_relay;  // sidecar minus relay per tick, sorted
  double publish_cpu_us_per_msg = 0;  // threads other than `deliveries`, per sidecar publish
  double relay_cpu_us_per_msg = 0;    // the relay process, per relayed publish
};

// The order in which tick i starts its calls, for 2 or 3 paths: two paths swap every tick;
// three go through the 6 permutations, so each path starts before each other one on half of
// the ticks.
std::array<std::size_t, 3> tick_order(std::size_t paths, std::int64_t i) {
  static constexpr std::array<std::array<std::size_t, 3>, 6> permutations{
      {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {1, 0, 2}, {2, 1, 0}}};
  if (paths == 2) {
    return i % 2 == 0 ? std::array<std::size_t, 3>{0, 1, 2} : std::array<std::size_t, 3>{1, 0, 2};
  }
  return permutations[static_cast<std::size_t>(i % 6)];
}

// One phase of both paths (or all three, with a relay path) on one schedule: at tick i a
// direct, a sidecar (and a relay) call with the same intended start, started in an order that
// changes every tick (tick_order: the later ones start a few µs later on the generator's I/O
// thread; the rotation spreads that over the paths alike).
interleaved_result run_interleaved(boost::asio::io_context& ctx, const publish_fn& direct,
                                   const publish_fn& sidecar, const publish_fn& relay, double rate,
                                   double duration_s, double pause_s, long sidecar_pid,
                                   long relay_pid, bool stagger) {
  const auto count = static_cast<std::int64_t>(rate * duration_s);
  const std::size_t paths = relay ? 3 : 2;
  interleaved_result out;
  const std::array<const publish_fn*, 3> fns{&direct, &sidecar, &relay};
  const std::array<phase_result*, 3> results{&out.direct, &out.sidecar, &out.relay};
  std::array<std::vector<std::int64_t>, 3> lat;
  for (std::size_t p = 0; p < paths; ++p) lat[p].assign(static_cast<std::size_t>(count), 0);
  const auto total = static_cast<std::int64_t>(paths) * count;
  std::int64_t completed = 0;
  std::promise<void> all_done;
  const double cpu_before = cpu_seconds(sidecar_pid);
  const double io_cpu_before = thread_cpu_seconds(sidecar_pid, "deliveries", true);
  const double relay_cpu_before = cpu_seconds(relay_pid);
  auto call = [&](std::size_t p, std::int64_t i, std::int64_t intended) {
    (*fns[p])([&, p, i, intended](bool ok) {
      lat[p][static_cast<std::size_t>(i)] = bench::now_ns() - intended;
      if (!ok) ++results[p]->failures;
      if (++completed == total) all_done.set_value();
    });
  };
  const auto start = bench::now_ns();
  if (stagger) {
    // Path p of tick i at (i + p / paths) / rate: each path at the rate, evenly spaced, the
    // other paths' calls a fraction of a period before and after it (no order to swap).
    bench::rate_pacer pacer(static_cast<double>(paths) * rate);
    for (std::int64_t j = 0; j < total; ++j) {
      const auto intended = pacer.wait_for(static_cast<std::uint64_t>(j));
      const std::int64_t i = j / static_cast<std::int64_t>(paths);
      const auto p = static_cast<std::size_t>(j % static_cast<std::int64_t>(paths));
      boost::asio::post(ctx, [&, p, i, intended] { call(p, i, intended); });
    }
  } else {
    bench::rate_pacer pacer(rate);
    for (std::int64_t i = 0; i < count; ++i) {
      const auto intended = pacer.wait_for(static_cast<std::uint64_t>(i));
      boost::asio::post(ctx, [&, i, intended] {
        const auto order = tick_order(paths, i);
        for (std::size_t k = 0; k < paths; ++k) call(order[k], i, intended);
      });
    }
  }
  if (count > 0) all_done.get_future().wait();
  const double elapsed_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  if (pause_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(pause_s));
  const double per_tick = static_cast<double>(std::max<std::int64_t>(count, 1));
  const double cpu_us = (cpu_seconds(sidecar_pid) - cpu_before) * 1e6 / per_tick;
  out.publish_cpu_us_per_msg =
      (thread_cpu_seconds(sidecar_pid, "deliveries", true) - io_cpu_before) * 1e6 / per_tick;
  out.relay_cpu_us_per_msg = (cpu_seconds(relay_pid) - relay_cpu_before) * 1e6 / per_tick;
  auto paired = [&](std::size_t a, std::size_t b) {
    std::vector<std::int64_t> diff;
    diff.reserve(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
      diff.push_back(lat[a][i] - lat[b][i]);
    }
    std::sort(diff.begin(), diff.end());
    return diff;
  };
  out.paired = paired(1, 0);
  if (paths == 3) {
    out.paired_relay = paired(2, 0);
    out.paired_sidecar_relay = paired(1, 2);
  }
  for (std::size_t p = 0; p < paths; ++p) {
    results[p]->samples = std::move(lat[p]);
    std::sort(results[p]->samples.begin(), results[p]->samples.end());
    results[p]->elapsed_s = elapsed_s;
    results[p]->cpu_us_per_msg = cpu_us;
  }
  return out;
}

std::string fmt_num(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.4f", v);
  return buffer;
}

// {"median","q1","q3","min","max"} of `values` (ms).
std::string spread_json(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    if (values.empty()) return 0.0;
    // Linear interpolation between closest ranks (the usual median of an even count).
    const double pos = q * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
  };
  return "{\"median\":" + fmt_num(at(0.5)) + ",\"q1\":" + fmt_num(at(0.25)) +
         ",\"q3\":" + fmt_num(at(0.75)) + ",\"min\":" + fmt_num(at(0.0)) +
         ",\"max\":" + fmt_num(at(1.0)) + "}";
}

std::string phase_json(const phase_result& p) {
  return "{\"p50\":" + fmt_num(quantile_ms(p.samples, 0.5)) +
         ",\"p90\":" + fmt_num(quantile_ms(p.samples, 0.9)) +
         ",\"p99\":" + fmt_num(quantile_ms(p.samples, 0.99)) +
         ",\"max\":" + fmt_num(quantile_ms(p.samples, 1.0)) +
         ",\"failures\":" + std::to_string(p.failures) + ",\"elapsed_s\":" + fmt_num(p.elapsed_s) +
         ",\"sidecar_cpu_us_per_msg\":" + fmt_num(p.cpu_us_per_msg) + "}";
}

int run(bench::arg_parser& args) {
  const std::string via = args.get("via", "sidecar");
  const std::string host = args.get("host", "127.0.0.1");
  const auto port = args.get_int("port", 0);
  const auto broker_port = args.get_int("broker-port", 0);
  const std::string pubsub = args.get("pubsub", "pubsub");
  const std::string topic = args.get("topic", "bench");
  const std::string direct_topic = args.get("direct-topic", topic + "-direct");
  const std::string stagger_flag = args.get("stagger", "false");
  const bool stagger = stagger_flag == "true";
  if (stagger_flag != "true" && stagger_flag != "false") {
    args.add_problem("--stagger must be true or false");
  }
  const double rate = args.get_double("rate", 1000);
  const double duration_s = args.get_double("duration-s", 10);
  const auto size = args.get_int("size", 1024);
  const auto rounds = args.get_int("rounds", 4);
  const double pause_s = args.get_double("pause-s", 1);
  const long sidecar_pid = static_cast<long>(args.get_int("sidecar-pid", 0));
  const auto relay_port = args.get_int("relay-port", 0);
  // Or the relay's address as the broker client takes it (e.g. unix:/path).
  const std::string relay_address = args.get(
      "relay-address", relay_port > 0 ? host + ":" + std::to_string(relay_port) : std::string());
  const long relay_pid = static_cast<long>(args.get_int("relay-pid", 0));
  const std::string relay_topic = args.get("relay-topic", topic + "-relay");
  const auto connections = args.get_int("connections", 128);
  const std::string label = args.get("label", "outrider-" + via);
  const std::string traceparent_flag = args.get("traceparent", "false");
  const bool with_traceparent = traceparent_flag == "true";
  if (traceparent_flag != "true" && traceparent_flag != "false") {
    args.add_problem("--traceparent must be true or false");
  }
  const bool interleave = via == "interleave";
  const bool alternate = via == "alternate" || interleave;  // both paths, rounds
  if (via != "sidecar" && via != "direct" && !alternate) {
    args.add_problem("--via must be sidecar, direct, alternate or interleave");
  }
  if (port <= 0) args.add_problem("--port is required");
  if (alternate && broker_port <= 0) {
    args.add_problem("--via alternate and interleave need --broker-port");
  }
  if (!relay_address.empty() && !interleave) {
    args.add_problem("--relay-port and --relay-address need --via interleave");
  }
  if (rounds < 1) args.add_problem("--rounds must be at least 1");
  if (connections < 1) args.add_problem("--connections must be at least 1");
  if (rate <= 0) args.add_problem("--rate must be positive");
  if (!args.finish()) return 2;

  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard(
      ctx.get_executor());
  std::thread io([&] { ctx.run(); });
  auto stop_io = [&] {
    guard.reset();
    ctx.stop();
    io.join();
  };
  const std::string body =
      "\"" + std::string(static_cast<std::size_t>(std::max<std::int64_t>(size - 2, 0)), 'x') + "\"";

  publish_fn via_sidecar;
  publish_fn via_direct;
  publish_fn via_relay;
  std::unique_ptr<http::client> web;
  std::shared_ptr<bc::client> broker;
  std::shared_ptr<bc::client> relayed;  // the direct path's client, connected through the relay
  http::url target;
  // Calls beyond `connections` outstanding wait here (I/O thread only).
  std::size_t http_outstanding = 0;
  std::deque<std::function<void(bool)>> http_waiting;
  std::function<void(std::function<void(bool)>)> send_http;
  std::uint64_t traceparents = 0;
  if (via == "sidecar" || alternate) {
    http::client_options co;
    co.max_idle_per_origin = static_cast<std::size_t>(connections);
    web = std::make_unique<http::client>(ctx, co);
    target = *http::url::parse("http://" + host + ":" + std::to_string(port) + "/v1.0/publish/" +
                               pubsub + "/" + topic);
    send_http = [&](std::function<void(bool)> done) {
      ++http_outstanding;
      http::request req;
      req.method = "POST";
      req.headers.set("Content-Type", "application/json");
      if (with_traceparent) {
        // 00-<trace id>-<parent id>-01: the call count in both ids, never all zero.
        ++traceparents;
        std::array<char, 56> tp{};
        std::snprintf(tp.data(), tp.size(), "00-4f7574726964657200000000%08x-%016llx-01",
                      static_cast<unsigned>(traceparents & 0xffffffffU),
                      static_cast<unsigned long long>(traceparents));
        req.headers.set("traceparent", tp.data());
      }
      req.body = body;
      web->send(target, std::move(req), std::chrono::seconds(10),
                [&, done = std::move(done)](result<http::response> r) {
                  --http_outstanding;
                  done(r && r->status == 204);
                  if (!http_waiting.empty()) {
                    auto next = std::move(http_waiting.front());
                    http_waiting.pop_front();
                    send_http(std::move(next));
                  }
                });
    };
    via_sidecar = [&](std::function<void(bool)> done) {
      if (http_outstanding >= static_cast<std::size_t>(connections)) {
        http_waiting.push_back(std::move(done));
        return;
      }
      send_http(std::move(done));
    };
  }
  // A broker client connected to `address` with `to` declared, or null.
  auto connect_broker = [&](const std::string& address,
                            const std::string& to) -> std::shared_ptr<bc::client> {
    bc::client_options o;
    o.address = address;
    auto client = bc::client::create(ctx, o);
    std::promise<status> connected;
    client->connect([&](status s) { connected.set_value(std::move(s)); });
    if (!connected.get_future().get()) return nullptr;
    std::promise<status> declared;
    client->declare_topic(to, [&](status s) { declared.set_value(std::move(s)); });
    (void)declared.get_future().get();
    return client;
  };
  auto broker_path = [&](const std::shared_ptr<bc::client>& client,
                         const std::string& to) -> publish_fn {
    return [&body, client, to](std::function<void(bool)> done) {
      std::vector<bc::outgoing_message> batch(1);
      batch[0].destination = to;
      batch[0].headers = {{"content-type", "application/json"}};
      batch[0].body = body;
      client->publish(std::move(batch),
                      [done = std::move(done)](result<std::vector<bc::publish_result>> r) {
                        done(r && (*r)[0].outcome);
                      });
    };
  };
  if (via == "direct" || alternate) {
    const std::string to = interleave ? direct_topic : topic;
    broker = connect_broker(host + ":" + std::to_string(alternate ? broker_port : port), to);
    if (!broker) {
      std::fprintf(stderr, "bench_sidecar_publish: cannot connect to the broker\n");
      stop_io();
      return 1;
    }
    via_direct = broker_path(broker, to);
  }
  if (!relay_address.empty()) {
    relayed = connect_broker(relay_address, relay_topic);
    if (!relayed) {
      std::fprintf(stderr, "bench_sidecar_publish: cannot connect to the broker via the relay\n");
      if (broker) broker->close();
      stop_io();
      return 1;
    }
    via_relay = broker_path(relayed, relay_topic);
  }

  // Warm up: calls one at a time on each path.
  auto warm = [&](const publish_fn& fn, std::int64_t concurrent) {
    std::atomic<std::int64_t> ok{0};
    std::promise<void> all;
    std::atomic<std::int64_t> left{concurrent};
    boost::asio::post(ctx, [&] {
      for (std::int64_t i = 0; i < concurrent; ++i) {
        fn([&](bool good) {
          if (good) ++ok;
          if (--left == 0) all.set_value();
        });
      }
    });
    all.get_future().wait();
    return ok == concurrent;
  };
  bool warmed = true;
  if (via_sidecar) {
    for (int i = 0; i < 200 && warmed; ++i) warmed = warm(via_sidecar, 1);
  }
  if (via_direct) {
    for (int i = 0; i < 200 && warmed; ++i) warmed = warm(via_direct, 1);
  }
  if (via_relay) {
    for (int i = 0; i < 200 && warmed; ++i) warmed = warm(via_relay, 1);
  }
  if (!warmed) {
    std::fprintf(stderr, "bench_sidecar_publish: warm-up publish failed\n");
    if (broker) broker->close();
    if (relayed) relayed->close();
    stop_io();
    return 1;
  }

  bench::json_line line;
  line.str("generator", "bench_sidecar_publish").str("system", label).str("via", via);
  line.integer("size", size);
  std::int64_t failures = 0;
  if (!alternate) {
    auto p = run_phase(ctx, via == "sidecar" ? via_sidecar : via_direct, rate, duration_s, 0,
                       sidecar_pid);
    failures = p.failures;
    bench::latency_samples latency;
    for (auto s : p.samples) latency.add(s);
    line.integer("messages", static_cast<std::int64_t>(p.samples.size()))
        .integer("failures", p.failures);
    line.num("rate_msg_s", rate).num("elapsed_s", p.elapsed_s);
    line.raw("latency_ms", latency.percentiles_json());
  } else {
    struct side {
      bench::latency_samples pooled;
      std::int64_t messages = 0;
      std::int64_t failures = 0;
      double elapsed_s = 0;
      double cpu_us = 0;  // sum over rounds of the per-message CPU
    } direct_side, sidecar_side, relay_side;
    std::vector<double> added_p50;
    std::vector<double> added_p99;
    std::vector<double> paired_p50;
    std::vector<double> paired_p99;
    std::vector<double> publish_cpu;
    // With a relay path: relay minus direct, sidecar minus relay (the sidecar's own part).
    std::vector<double> relay_added_p50;
    std::vector<double> relay_added_p99;
    std::vector<double> relay_paired_p50;
    std::vector<double> relay_paired_p99;
    std::vector<double> own_added_p50;
    std::vector<double> own_added_p99;
    std::vector<double> own_paired_p50;
    std::vector<double> own_paired_p99;
    std::vector<double> relay_cpu;
    std::string per_round = "[";
    for (std::int64_t round = 1; round <= rounds; ++round) {
      const bool direct_first = round % 2 == 1;
      phase_result d;
      phase_result s;
      std::string paired_json;
      if (interleave) {
        auto r = run_interleaved(ctx, via_direct, via_sidecar, via_relay, rate, duration_s, pause_s,
                                 sidecar_pid, relay_pid, stagger);
        d = std::move(r.direct);
        s = std::move(r.sidecar);
        paired_p50.push_back(quantile_ms(r.paired, 0.5));
        paired_p99.push_back(quantile_ms(r.paired, 0.99));
        publish_cpu.push_back(r.publish_cpu_us_per_msg);
        paired_json = ",\"paired_p50_ms\":" + fmt_num(paired_p50.back()) +
                      ",\"paired_p99_ms\":" + fmt_num(paired_p99.back()) +
                      ",\"publish_cpu_us_per_msg\":" + fmt_num(publish_cpu.back());
        if (via_relay) {
          const auto& rl = r.relay;
          relay_added_p50.push_back(quantile_ms(rl.samples, 0.5) - quantile_ms(d.samples, 0.5));
          relay_added_p99.push_back(quantile_ms(rl.samples, 0.99) - quantile_ms(d.samples, 0.99));
          own_added_p50.push_back(quantile_ms(s.samples, 0.5) - quantile_ms(rl.samples, 0.5));
          own_added_p99.push_back(quantile_ms(s.samples, 0.99) - quantile_ms(rl.samples, 0.99));
          relay_paired_p50.push_back(quantile_ms(r.paired_relay, 0.5));
          relay_paired_p99.push_back(quantile_ms(r.paired_relay, 0.99));
          own_paired_p50.push_back(quantile_ms(r.paired_sidecar_relay, 0.5));
          own_paired_p99.push_back(quantile_ms(r.paired_sidecar_relay, 0.99));
          relay_cpu.push_back(r.relay_cpu_us_per_msg);
          paired_json += ",\"relay\":" + phase_json(rl) +
                         ",\"relay_added_p50_ms\":" + fmt_num(relay_added_p50.back()) +
                         ",\"relay_added_p99_ms\":" + fmt_num(relay_added_p99.back()) +
                         ",\"relay_paired_p50_ms\":" + fmt_num(relay_paired_p50.back()) +
                         ",\"relay_paired_p99_ms\":" + fmt_num(relay_paired_p99.back()) +
                         ",\"own_added_p50_ms\":" + fmt_num(own_added_p50.back()) +
                         ",\"own_added_p99_ms\":" + fmt_num(own_added_p99.back()) +
                         ",\"relay_cpu_us_per_msg\":" + fmt_num(relay_cpu.back());
          for (auto v : rl.samples) relay_side.pooled.add(v);
          relay_side.messages += static_cast<std::int64_t>(rl.samples.size());
          relay_side.failures += rl.failures;
          relay_side.elapsed_s += rl.elapsed_s;
          relay_side.cpu_us += r.relay_cpu_us_per_msg;
        }
      } else if (direct_first) {
        d = run_phase(ctx, via_direct, rate, duration_s, pause_s, sidecar_pid);
        s = run_phase(ctx, via_sidecar, rate, duration_s, pause_s, sidecar_pid);
      } else {
        s = run_phase(ctx, via_sidecar, rate, duration_s, pause_s, sidecar_pid);
        d = run_phase(ctx, via_direct, rate, duration_s, pause_s, sidecar_pid);
      }
      for (auto [res, sd] : {std::pair{&d, &direct_side}, std::pair{&s, &sidecar_side}}) {
        for (auto v : res->samples) sd->pooled.add(v);
        sd->messages += static_cast<std::int64_t>(res->samples.size());
        sd->failures += res->failures;
        sd->elapsed_s += res->elapsed_s;
        sd->cpu_us += res->cpu_us_per_msg;
      }
      const double a50 = quantile_ms(s.samples, 0.5) - quantile_ms(d.samples, 0.5);
      const double a99 = quantile_ms(s.samples, 0.99) - quantile_ms(d.samples, 0.99);
      added_p50.push_back(a50);
      added_p99.push_back(a99);
      if (round > 1) per_round += ",";
      per_round += "{\"round\":" + std::to_string(round) + ",\"first\":\"" +
                   (interleave     ? "both"
                    : direct_first ? "direct"
                                   : "sidecar") +
                   "\",\"direct\":" + phase_json(d) + ",\"sidecar\":" + phase_json(s) +
                   ",\"added_p50_ms\":" + fmt_num(a50) + ",\"added_p99_ms\":" + fmt_num(a99) +
                   paired_json + "}";
    }
    per_round += "]";
    failures = direct_side.failures + sidecar_side.failures + relay_side.failures;
    auto side_json = [&](side& sd, const char* cpu_key = "sidecar_cpu_us_per_msg") {
      return "{\"messages\":" + std::to_string(sd.messages) +
             ",\"failures\":" + std::to_string(sd.failures) +
             ",\"elapsed_s\":" + fmt_num(sd.elapsed_s) + ",\"" + cpu_key +
             "\":" + fmt_num(sd.cpu_us / static_cast<double>(rounds)) +
             ",\"latency_ms\":" + sd.pooled.percentiles_json() + "}";
    };
    line.num("rate_msg_s", rate).num("duration_s", duration_s).integer("rounds", rounds);
    line.integer("failures", failures);
    line.raw("direct", side_json(direct_side)).raw("sidecar", side_json(sidecar_side));
    line.raw("added_p50_ms", spread_json(added_p50)).raw("added_p99_ms", spread_json(added_p99));
    if (interleave) {
      line.raw("paired_p50_ms", spread_json(paired_p50))
          .raw("paired_p99_ms", spread_json(paired_p99))
          .raw("publish_cpu_us_per_msg", spread_json(publish_cpu));
    }
    if (via_relay) {
      line.raw("relay", side_json(relay_side, "relay_cpu_us_per_msg"))
          .raw("relay_added_p50_ms", spread_json(relay_added_p50))
          .raw("relay_added_p99_ms", spread_json(relay_added_p99))
          .raw("relay_paired_p50_ms", spread_json(relay_paired_p50))
          .raw("relay_paired_p99_ms", spread_json(relay_paired_p99))
          .raw("own_added_p50_ms", spread_json(own_added_p50))
          .raw("own_added_p99_ms", spread_json(own_added_p99))
          .raw("own_paired_p50_ms", spread_json(own_paired_p50))
          .raw("own_paired_p99_ms", spread_json(own_paired_p99))
          .raw("relay_cpu_us_per_msg", spread_json(relay_cpu));
    }
    line.raw("per_round", per_round);
  }
  if (broker) broker->close();
  if (relayed) relayed->close();
  // The client's connections belong to the I/O thread: drop it there.
  std::promise<void> dropped;
  boost::asio::post(ctx, [&] {
    web.reset();
    dropped.set_value();
  });
  dropped.get_future().wait();
  stop_io();
  line.print();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  return run(args);
}
