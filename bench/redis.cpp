// bench_redis: Redis Streams load generator (hiredis). One producer connection XADDs with at most
// --inflight pipelined commands outstanding; one consumer connection reads through a consumer
// group (XREADGROUP COUNT --prefetch) and XACKs each batch. Durability is the server's
// appendfsync setting, chosen by bench/run. Mode `delayed` is the BullMQ recipe: ZADD into a
// sorted set scored by due time, a mover loop running a Lua script (ZRANGEBYSCORE, XADD, ZREM),
// and the same consumer measuring firing lag.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/driver.h"

namespace {

constexpr std::int64_t block_ms = 500;
constexpr std::int64_t mover_batch = 1000;
constexpr std::int64_t mover_max_sleep_us = 5000;
constexpr double ns_per_s = 1e9;

struct redis_deleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using connection = std::unique_ptr<redisContext, redis_deleter>;
struct reply_deleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

connection connect(const bench::common_options& options) {
  connection context(redisConnect(options.host.c_str(), options.port));
  if (!context || context->err) {
    std::fprintf(stderr, "error: connect: %s\n", context ? context->errstr : "out of memory");
    return nullptr;
  }
  return context;
}

// Runs one command given as binary-safe arguments; nullptr (with a message) on any failure.
reply_ptr command(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  reply_ptr reply(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  if (!reply) {
    std::fprintf(stderr, "error: %s: %s\n", args[0].c_str(), context->errstr);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    std::fprintf(stderr, "error: %s: %s\n", args[0].c_str(), reply->str);
    return nullptr;
  }
  return reply;
}

void append(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data());
}

bool take_reply(redisContext* context) {
  void* raw = nullptr;
  if (redisGetReply(context, &raw) != REDIS_OK) {
    std::fprintf(stderr, "error: reply: %s\n", context->errstr);
    return false;
  }
  reply_ptr reply(static_cast<redisReply*>(raw));
  if (reply->type == REDIS_REPLY_ERROR) {
    std::fprintf(stderr, "error: reply: %s\n", reply->str);
    return false;
  }
  return true;
}

struct keys {
  std::string stream;
  std::string delayed;
  std::string group = "bench";
};

// What the consumer saw. Latency is publish→consume (throughput/latency) or firing lag (delayed).
struct consumer_result {
  bench::latency_samples latency;
  std::int64_t consumed = 0;
  std::int64_t early = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  bool ok = true;
};

void consume(const bench::common_options& options, const keys& names, std::int64_t expected,
             bool delayed, consumer_result& result) {
  auto context = connect(options);
  if (!context) {
    result.ok = false;
    return;
  }
  result.latency.reserve(static_cast<std::size_t>(expected));
  auto deadline = bench::now_ns() + static_cast<std::int64_t>(options.timeout_s * ns_per_s);
  std::vector<std::string> read = {"XREADGROUP", "GROUP",
                                   names.group,  "c1",
                                   "COUNT",      std::to_string(options.prefetch),
                                   "BLOCK",      std::to_string(block_ms),
                                   "STREAMS",    names.stream,
                                   ">"};
  bench::payload_header header;
  // The XACK of one batch is pipelined with the XREADGROUP of the next: one round trip (and one
  // AOF fsync under appendfsync always) per batch.
  std::vector<std::string> ack;
  while (result.consumed < expected && bench::now_ns() < deadline) {
    if (ack.size() > 3) {
      append(context.get(), ack);
      append(context.get(), read);
      if (!take_reply(context.get())) {
        result.ok = false;
        return;
      }
    } else {
      append(context.get(), read);
    }
    void* raw = nullptr;
    if (redisGetReply(context.get(), &raw) != REDIS_OK || raw == nullptr) {
      std::fprintf(stderr, "error: XREADGROUP: %s\n", context->errstr);
      result.ok = false;
      return;
    }
    reply_ptr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "error: XREADGROUP: %s\n", reply->str);
      result.ok = false;
      return;
    }
    ack = {"XACK", names.stream, names.group};
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) continue;
    redisReply* entries = reply->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; ++i) {
      redisReply* entry = entries->element[i];
      ack.emplace_back(entry->element[0]->str, entry->element[0]->len);
      redisReply* fields = entry->element[1];
      if (fields->elements < 2) continue;
      std::string_view body(fields->element[1]->str, fields->element[1]->len);
      if (!bench::read_payload(body, header)) continue;
      auto now = bench::now_ns();
      if (result.consumed == 0) result.first_ns = now;
      result.last_ns = now;
      if (delayed) {
        auto lag_us = bench::wall_us() - header.due_us;
        if (lag_us < 0) ++result.early;
        result.latency.add(std::max<std::int64_t>(lag_us, 0) * 1000);
      } else {
        result.latency.add(now - header.sent_ns);
      }
      ++result.consumed;
    }
  }
  if (ack.size() > 3 && !command(context.get(), ack)) result.ok = false;
}

// Publishes `count` XADDs, pipelined up to options.inflight; paced when rate > 0.
bool produce(const bench::common_options& options, const keys& names, std::int64_t count,
             double rate) {
  auto context = connect(options);
  if (!context) return false;
  std::unique_ptr<bench::rate_pacer> pacer;
  if (rate > 0) pacer = std::make_unique<bench::rate_pacer>(rate);
  std::string body;
  std::int64_t outstanding = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    bench::payload_header header;
    header.sequence = i;
    header.sent_ns = pacer ? pacer->wait_for(static_cast<std::uint64_t>(i)) : bench::now_ns();
    bench::write_payload(body, static_cast<std::size_t>(options.size), header);
    append(context.get(), {"XADD", names.stream, "*", "d", body});
    if (++outstanding >= options.inflight) {
      if (!take_reply(context.get())) return false;
      --outstanding;
    } else if (pacer) {
      // Paced mode sends each message now rather than leaving it in the client buffer; replies
      // are read once the window is full, by which time most of them have arrived.
      int done = 0;
      while (done == 0) {
        if (redisBufferWrite(context.get(), &done) != REDIS_OK) return false;
      }
    }
  }
  while (outstanding > 0) {
    if (!take_reply(context.get())) return false;
    --outstanding;
  }
  return true;
}

constexpr const char* mover_script = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do redis.call('XADD', KEYS[2], '*', 'd', member) end
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] then return {#due, head[2]} end
return {#due, '-1'}
)lua";

// The mover loop of the recipe: moves due members to the stream, then sleeps until the next due
// time (at most mover_max_sleep_us, so members scheduled meanwhile are noticed).
void move_due(const bench::common_options& options, const keys& names,
              const std::atomic<bool>& stop, std::atomic<bool>& ok) {
  auto context = connect(options);
  if (!context) {
    ok = false;
    return;
  }
  auto loaded = command(context.get(), {"SCRIPT", "LOAD", mover_script});
  if (!loaded) {
    ok = false;
    return;
  }
  std::string sha(loaded->str, loaded->len);
  while (!stop.load()) {
    auto now = bench::wall_us();
    auto reply = command(context.get(), {"EVALSHA", sha, "2", names.delayed, names.stream,
                                         std::to_string(now), std::to_string(mover_batch)});
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      ok = false;
      return;
    }
    if (reply->element[0]->integer >= mover_batch) continue;
    auto next_due = static_cast<std::int64_t>(std::atof(reply->element[1]->str));
    auto sleep_us =
        next_due < 0 ? mover_max_sleep_us
                     : std::clamp<std::int64_t>(next_due - bench::wall_us(), 0, mover_max_sleep_us);
    if (sleep_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  }
}

int run(const bench::common_options& options) {
  keys names;
  auto unique = std::to_string(::getpid()) + ":" + std::to_string(bench::now_ns());
  names.stream = "bench:stream:" + unique;
  names.delayed = "bench:delayed:" + unique;
  auto admin = connect(options);
  if (!admin) return 1;
  if (!command(admin.get(), {"XGROUP", "CREATE", names.stream, names.group, "$", "MKSTREAM"})) {
    return 1;
  }
  bench::rss_sampler rss(options.server_pid);
  bool delayed = options.mode == "delayed";
  std::int64_t count = options.mode == "latency"
                           ? static_cast<std::int64_t>(options.rate * options.duration_s)
                           : options.messages;
  // Delayed, large mode: only the near messages come due during the run.
  const std::int64_t expected = delayed ? bench::near_messages(options) : count;
  consumer_result consumed;
  std::thread consumer([&] { consume(options, names, expected, delayed, consumed); });
  auto start = bench::now_ns();
  bool produced = true;
  double schedule_rate = 0;
  std::atomic<bool> stop_mover{false};
  std::atomic<bool> mover_ok{true};
  std::thread mover;
  if (delayed) {
    mover = std::thread([&] { move_due(options, names, stop_mover, mover_ok); });
    auto context = connect(options);
    produced = context != nullptr;
    std::string body;
    bench::due_schedule schedule(options);
    std::int64_t outstanding = 0;
    for (std::int64_t i = 0; produced && i < count; ++i) {
      bench::payload_header header;
      header.sequence = i;
      header.due_us = schedule.due_us(i);
      bench::write_payload(body, static_cast<std::size_t>(options.size), header);
      append(context.get(), {"ZADD", names.delayed, std::to_string(header.due_us), body});
      if (++outstanding >= options.inflight) {
        produced = take_reply(context.get());
        --outstanding;
      }
    }
    while (produced && outstanding-- > 0) produced = take_reply(context.get());
    schedule_rate =
        static_cast<double>(count) / (static_cast<double>(bench::now_ns() - start) / ns_per_s);
  } else {
    produced = produce(options, names, count, options.mode == "latency" ? options.rate : 0);
  }
  consumer.join();
  stop_mover = true;
  if (mover.joinable()) mover.join();
  auto peak_rss = rss.peak_bytes();
  command(admin.get(), {"DEL", names.stream, names.delayed});
  if (!produced || !consumed.ok || !mover_ok) return 1;

  auto line = bench::report_header(options, "bench_redis");
  line.integer("messages", count).integer("consumed", consumed.consumed);
  line.integer("missing", expected - consumed.consumed);
  if (delayed) line.integer("pending_far", count - expected);
  double elapsed_s = static_cast<double>(consumed.last_ns - start) / ns_per_s;
  line.num("elapsed_s", elapsed_s);
  if (delayed) {
    line.num("window_s", options.window_s).num("schedule_rate_msg_s", schedule_rate);
    line.raw("fire_lag_ms", consumed.latency.percentiles_json()).integer("early", consumed.early);
  } else {
    line.num("throughput_msg_s", static_cast<double>(consumed.consumed) / elapsed_s);
    line.raw("latency_ms", consumed.latency.percentiles_json());
    if (options.mode == "latency") line.num("rate_msg_s", options.rate);
  }
  line.integer("server_peak_rss_bytes", peak_rss);
  line.print();
  return consumed.consumed == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  auto options = bench::parse_common(args, "redis-streams");
  if (!args.finish()) return 2;
  return run(options);
}
