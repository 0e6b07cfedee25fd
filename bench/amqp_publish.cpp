// bench_amqp_publish: the baseline of the rabbitmq-sidecar suite. A plain AMQP
// client (librabbitmq) publishes persistent 1 KiB messages to a topic's fanout
// exchange with publisher confirms, open loop at a fixed rate (publishes start
// on schedule whatever the confirms do), and reports the latency from each
// publish's intended start to its confirm: what an app talking AMQP itself
// sees, to compare with bench_sidecar_publish --via sidecar against a sidecar
// on the same RabbitMQ (--pubsub-type rabbitmq).
//   bench_amqp_publish --port AMQP_PORT [--rate 1000 --duration-s 10 --size 1024 --topic bench
//                      --queue-type quorum|classic]
#include <poll.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>

#include "common/driver.h"

namespace {

constexpr int channel = 1;

bool ok(amqp_rpc_reply_t r, const char* what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
  std::fprintf(stderr, "bench_amqp_publish: %s failed\n", what);
  return false;
}

int run(bench::arg_parser& args) {
  const std::string host = args.get("host", "127.0.0.1");
  const auto port = args.get_int("port", 0);
  const std::string topic = args.get("topic", "bench");
  const double rate = args.get_double("rate", 1000);
  const double duration_s = args.get_double("duration-s", 10);
  const auto size = args.get_int("size", 1024);
  const std::string label = args.get("label", "amqp-direct");
  // A durable queue bound to the topic's exchange, so confirms wait for it to store the
  // message (without one RabbitMQ confirms at once). The sidecar's publishes to the same
  // topic land in it too.
  const std::string queue_type = args.get("queue-type", "quorum");
  if (port <= 0) args.add_problem("--port is required");
  if (!args.finish()) return 2;

  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* sock = amqp_tcp_socket_new(conn);
  if (amqp_socket_open(sock, host.c_str(), static_cast<int>(port)) != AMQP_STATUS_OK) {
    std::fprintf(stderr, "bench_amqp_publish: cannot connect\n");
    return 1;
  }
  if (!ok(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login")) {
    return 1;
  }
  amqp_channel_open(conn, channel);
  if (!ok(amqp_get_rpc_reply(conn), "channel.open")) return 1;
  amqp_exchange_declare(conn, channel, amqp_cstring_bytes(topic.c_str()),
                        amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
  if (!ok(amqp_get_rpc_reply(conn), "exchange.declare")) return 1;
  const std::string sink = topic + "-sink";
  amqp_table_entry_t type_entry{};
  type_entry.key = amqp_cstring_bytes("x-queue-type");
  type_entry.value.kind = AMQP_FIELD_KIND_UTF8;
  type_entry.value.value.bytes = amqp_cstring_bytes(queue_type.c_str());
  amqp_table_t queue_args{1, &type_entry};
  amqp_queue_declare(conn, channel, amqp_cstring_bytes(sink.c_str()), 0, 1, 0, 0, queue_args);
  if (!ok(amqp_get_rpc_reply(conn), "queue.declare")) return 1;
  amqp_queue_bind(conn, channel, amqp_cstring_bytes(sink.c_str()),
                  amqp_cstring_bytes(topic.c_str()), amqp_cstring_bytes(""), amqp_empty_table);
  if (!ok(amqp_get_rpc_reply(conn), "queue.bind")) return 1;
  amqp_confirm_select(conn, channel);
  if (!ok(amqp_get_rpc_reply(conn), "confirm.select")) return 1;

  const std::string body =
      "\"" + std::string(static_cast<std::size_t>(std::max<std::int64_t>(size - 2, 0)), 'x') + "\"";
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/json");
  amqp_bytes_t payload{body.size(), const_cast<char*>(body.data())};

  std::uint64_t seq = 0;
  std::map<std::uint64_t, std::int64_t> pending;  // seq -> intended start
  bench::latency_samples latency;
  std::int64_t failures = 0;
  // Reads confirms until `until_ns` (0: just what is there). The socket is waited on with
  // ppoll, whose timeout has nanosecond resolution: librabbitmq's own timed wait rounds to
  // whole milliseconds, which made publishes start up to 1 ms before their intended time
  // (and their latencies read negative).
  const int fd = amqp_get_sockfd(conn);
  auto drain = [&](std::int64_t until_ns) -> bool {
    bool partial = false;  // the library holds part of a frame: wait for the socket
    for (;;) {
      if (partial || (amqp_frames_enqueued(conn) == 0 && amqp_data_in_buffer(conn) == 0)) {
        const std::int64_t left = until_ns - bench::now_ns();
        pollfd p{fd, POLLIN, 0};
        timespec ts{0, 0};
        if (left > 0) {
          ts.tv_sec = static_cast<time_t>(left / 1000000000);
          ts.tv_nsec = static_cast<long>(left % 1000000000);
        }
        const int n = ::ppoll(&p, 1, &ts, nullptr);
        if (n < 0 && errno != EINTR) return false;
        if (n <= 0) {
          if (bench::now_ns() >= until_ns) return true;
          continue;
        }
      }
      timeval tv{0, 0};
      amqp_frame_t frame;
      const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
      partial = rc == AMQP_STATUS_TIMEOUT;
      if (partial) continue;  // wait for the rest of the frame
      if (rc != AMQP_STATUS_OK) return false;
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      const auto id = frame.payload.method.id;
      if (id != AMQP_BASIC_ACK_METHOD && id != AMQP_BASIC_NACK_METHOD) continue;
      std::uint64_t tag = 0;
      bool multiple = false;
      if (id == AMQP_BASIC_ACK_METHOD) {
        const auto* a = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
        tag = a->delivery_tag;
        multiple = a->multiple != 0;
      } else {
        const auto* a = static_cast<const amqp_basic_nack_t*>(frame.payload.method.decoded);
        tag = a->delivery_tag;
        multiple = a->multiple != 0;
        ++failures;
      }
      const std::int64_t now = bench::now_ns();
      // A confirm covers its tag, and with `multiple` every earlier one too.
      auto first = multiple ? pending.begin() : pending.find(tag);
      auto end = multiple ? pending.upper_bound(tag) : first;
      if (!multiple && first != pending.end()) ++end;
      for (auto it = first; it != end; ++it) latency.add(now - it->second);
      pending.erase(first, end);
      amqp_maybe_release_buffers(conn);
    }
  };

  const auto count = static_cast<std::int64_t>(rate * duration_s);
  const double interval_ns = 1e9 / rate;
  latency.reserve(static_cast<std::size_t>(count));
  const std::int64_t start = bench::now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    const auto intended = start + static_cast<std::int64_t>(static_cast<double>(i) * interval_ns);
    if (!drain(intended)) {
      std::fprintf(stderr, "bench_amqp_publish: connection lost\n");
      return 1;
    }
    if (amqp_basic_publish(conn, channel, amqp_cstring_bytes(topic.c_str()), amqp_cstring_bytes(""),
                           0, 0, &props, payload) != AMQP_STATUS_OK) {
      std::fprintf(stderr, "bench_amqp_publish: publish failed\n");
      return 1;
    }
    pending.emplace(++seq, intended);
  }
  const std::int64_t give_up = bench::now_ns() + 30000000000LL;
  while (!pending.empty() && bench::now_ns() < give_up) {
    if (!drain(bench::now_ns() + 1000000)) break;
  }
  const double elapsed_s = static_cast<double>(bench::now_ns() - start) / 1e9;
  failures += static_cast<std::int64_t>(pending.size());
  amqp_channel_close(conn, channel, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  bench::json_line line;
  line.str("generator", "bench_amqp_publish").str("system", label).str("via", "amqp");
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
