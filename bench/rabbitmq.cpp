// bench_rabbitmq: RabbitMQ load generator (AMQP 0-9-1 through librabbitmq). One producer
// connection publishes persistent messages (delivery_mode 2) to a durable queue with publisher
// confirms, at most --inflight unconfirmed; one consumer connection consumes with basic.qos
// --prefetch and acks each delivery. --queue-type classic|quorum picks the queue kind. Mode
// `delayed` is the per-message TTL + dead-letter recipe (the delayed-message plugin is not in
// Debian): messages wait in a queue without consumers and expire into the consumed queue.
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "common/driver.h"

namespace {

constexpr int channel = 1;
constexpr int frame_max = 131072;
constexpr long poll_timeout_us = 200000;
constexpr double ns_per_s = 1e9;
constexpr std::int64_t us_per_ms = 1000;

struct connection_closer {
  void operator()(amqp_connection_state_t_* state) const {
    amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(state, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state);
  }
};
using connection = std::unique_ptr<amqp_connection_state_t_, connection_closer>;

bool check(amqp_rpc_reply_t reply, const char* what) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return true;
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    std::fprintf(stderr, "error: %s: %s\n", what, amqp_error_string2(reply.library_error));
  } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    std::fprintf(stderr, "error: %s: channel closed: %.*s\n", what,
                 static_cast<int>(close->reply_text.len),
                 static_cast<const char*>(close->reply_text.bytes));
  } else {
    std::fprintf(stderr, "error: %s: server error (method 0x%08x)\n", what, reply.reply.id);
  }
  return false;
}

connection connect(const bench::common_options& options) {
  amqp_connection_state_t state = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(state);
  if (socket == nullptr || amqp_socket_open(socket, options.host.c_str(), options.port) != 0) {
    std::fprintf(stderr, "error: cannot connect to %s:%d\n", options.host.c_str(), options.port);
    amqp_destroy_connection(state);
    return nullptr;
  }
  if (!check(amqp_login(state, "/", 0, frame_max, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
             "login")) {
    amqp_destroy_connection(state);
    return nullptr;
  }
  amqp_channel_open(state, channel);
  if (!check(amqp_get_rpc_reply(state), "channel.open")) {
    amqp_destroy_connection(state);
    return nullptr;
  }
  return connection(state);
}

// Declares a durable queue of `queue_type`; dead-letters expired messages to `dead_letter_to` if
// not empty.
bool declare(amqp_connection_state_t state, const std::string& name, const std::string& queue_type,
             const std::string& dead_letter_to) {
  amqp_table_entry_t entries[3];
  int count = 0;
  entries[count].key = amqp_cstring_bytes("x-queue-type");
  entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
  entries[count++].value.value.bytes = amqp_cstring_bytes(queue_type.c_str());
  if (!dead_letter_to.empty()) {
    entries[count].key = amqp_cstring_bytes("x-dead-letter-exchange");
    entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[count++].value.value.bytes = amqp_cstring_bytes("");
    entries[count].key = amqp_cstring_bytes("x-dead-letter-routing-key");
    entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[count++].value.value.bytes = amqp_cstring_bytes(dead_letter_to.c_str());
  }
  amqp_table_t arguments{count, entries};
  amqp_queue_declare(state, channel, amqp_cstring_bytes(name.c_str()), 0, 1, 0, 0, arguments);
  return check(amqp_get_rpc_reply(state), "queue.declare");
}

struct consumer_result {
  bench::latency_samples latency;
  std::int64_t consumed = 0;
  std::int64_t early = 0;
  std::int64_t last_ns = 0;
  bool ok = true;
};

void consume(const bench::common_options& options, const std::string& queue, std::int64_t expected,
             bool delayed, consumer_result& result) {
  auto state = connect(options);
  if (!state) {
    result.ok = false;
    return;
  }
  result.latency.reserve(static_cast<std::size_t>(expected));
  amqp_basic_qos(state.get(), channel, 0, static_cast<std::uint16_t>(options.prefetch), 0);
  if (!check(amqp_get_rpc_reply(state.get()), "basic.qos")) {
    result.ok = false;
    return;
  }
  amqp_basic_consume(state.get(), channel, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0,
                     0, 0, amqp_empty_table);
  if (!check(amqp_get_rpc_reply(state.get()), "basic.consume")) {
    result.ok = false;
    return;
  }
  auto deadline = bench::now_ns() + static_cast<std::int64_t>(options.timeout_s * ns_per_s);
  bench::payload_header header;
  while (result.consumed < expected && bench::now_ns() < deadline) {
    amqp_maybe_release_buffers(state.get());
    amqp_envelope_t envelope;
    timeval timeout{0, poll_timeout_us};
    auto reply = amqp_consume_message(state.get(), &envelope, &timeout, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      continue;
    }
    if (!check(reply, "consume")) {
      result.ok = false;
      return;
    }
    std::string_view body(static_cast<const char*>(envelope.message.body.bytes),
                          envelope.message.body.len);
    if (bench::read_payload(body, header)) {
      auto now = bench::now_ns();
      result.last_ns = now;
      if (delayed) {
        auto lag_us = bench::wall_us() - header.due_us;
        if (lag_us < 0) ++result.early;
        result.latency.add(std::max<std::int64_t>(lag_us, 0) * us_per_ms);
      } else {
        result.latency.add(now - header.sent_ns);
      }
      ++result.consumed;
    }
    amqp_basic_ack(state.get(), channel, envelope.delivery_tag, 0);
    amqp_destroy_envelope(&envelope);
  }
}

// Publisher confirms: delivery tags of unconfirmed publishes.
class confirm_window {
 public:
  explicit confirm_window(amqp_connection_state_t state) : state_(state) {}
  void published() { pending_.insert(++next_tag_); }
  std::size_t size() const { return pending_.size(); }
  // Reads confirm frames: blocking until one arrives if `block`, else only those already here.
  bool read(bool block) {
    amqp_frame_t frame;
    timeval zero{0, 0};
    int status = amqp_simple_wait_frame_noblock(state_, &frame, block ? nullptr : &zero);
    while (status == AMQP_STATUS_OK) {
      if (frame.frame_type == AMQP_FRAME_METHOD) {
        if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
          std::fprintf(stderr, "error: publish nacked by the broker\n");
          return false;
        }
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
          auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
          if (ack->multiple) {
            pending_.erase(pending_.begin(), pending_.upper_bound(ack->delivery_tag));
          } else {
            pending_.erase(ack->delivery_tag);
          }
        }
      }
      if (!amqp_frames_enqueued(state_) && !amqp_data_in_buffer(state_)) break;
      status = amqp_simple_wait_frame_noblock(state_, &frame, &zero);
    }
    if (status != AMQP_STATUS_OK && status != AMQP_STATUS_TIMEOUT) {
      std::fprintf(stderr, "error: waiting for confirms: %s\n", amqp_error_string2(status));
      return false;
    }
    return true;
  }

 private:
  amqp_connection_state_t state_;
  std::set<std::uint64_t> pending_;
  std::uint64_t next_tag_ = 0;
};

int run(const bench::common_options& options, const std::string& queue_type) {
  auto unique = std::to_string(::getpid()) + "." + std::to_string(bench::now_ns());
  std::string queue = "bench." + unique;
  std::string waiting = "bench.wait." + unique;
  bool delayed = options.mode == "delayed";
  auto producer = connect(options);
  if (!producer || !declare(producer.get(), queue, queue_type, "")) return 1;
  if (delayed && !declare(producer.get(), waiting, queue_type, queue)) return 1;
  amqp_confirm_select(producer.get(), channel);
  if (!check(amqp_get_rpc_reply(producer.get()), "confirm.select")) return 1;

  bench::rss_sampler rss(options.server_pid);
  std::int64_t count = options.mode == "latency"
                           ? static_cast<std::int64_t>(options.rate * options.duration_s)
                           : options.messages;
  consumer_result consumed;
  std::thread consumer([&] { consume(options, queue, count, delayed, consumed); });
  std::unique_ptr<bench::rate_pacer> pacer;
  if (options.mode == "latency") pacer = std::make_unique<bench::rate_pacer>(options.rate);

  auto start = bench::now_ns();
  confirm_window confirms(producer.get());
  bool produced = true;
  std::string body;
  std::string expiration;
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  for (std::int64_t i = 0; produced && i < count; ++i) {
    bench::payload_header header;
    header.sequence = i;
    header.sent_ns = pacer ? pacer->wait_for(static_cast<std::uint64_t>(i)) : bench::now_ns();
    if (delayed) {
      auto offset_us = bench::delay_offset_us(i, options.window_s);
      header.due_us = bench::wall_us() + offset_us;
      expiration = std::to_string(offset_us / us_per_ms);
      properties._flags |= AMQP_BASIC_EXPIRATION_FLAG;
      properties.expiration = amqp_cstring_bytes(expiration.c_str());
    }
    bench::write_payload(body, static_cast<std::size_t>(options.size), header);
    amqp_bytes_t bytes{body.size(), body.data()};
    const std::string& target = delayed ? waiting : queue;
    if (amqp_basic_publish(producer.get(), channel, amqp_empty_bytes,
                           amqp_cstring_bytes(target.c_str()), 0, 0, &properties, bytes) != 0) {
      std::fprintf(stderr, "error: basic.publish failed\n");
      produced = false;
      break;
    }
    confirms.published();
    produced = confirms.read(false);
    while (produced && confirms.size() >= static_cast<std::size_t>(options.inflight)) {
      produced = confirms.read(true);
    }
  }
  while (produced && confirms.size() > 0) produced = confirms.read(true);
  double schedule_rate =
      static_cast<double>(count) / (static_cast<double>(bench::now_ns() - start) / ns_per_s);
  consumer.join();
  auto peak_rss = rss.peak_bytes();
  amqp_queue_delete(producer.get(), channel, amqp_cstring_bytes(queue.c_str()), 0, 0);
  if (delayed)
    amqp_queue_delete(producer.get(), channel, amqp_cstring_bytes(waiting.c_str()), 0, 0);
  if (!produced || !consumed.ok) return 1;

  auto line = bench::report_header(options, "bench_rabbitmq");
  line.str("queue_type", queue_type);
  line.integer("messages", count).integer("consumed", consumed.consumed);
  line.integer("missing", count - consumed.consumed);
  double elapsed_s = static_cast<double>(consumed.last_ns - start) / ns_per_s;
  line.num("elapsed_s", elapsed_s);
  if (delayed) {
    line.num("window_s", options.window_s).num("schedule_rate_msg_s", schedule_rate);
    line.raw("fire_lag_ms", consumed.latency.percentiles_json()).integer("early", consumed.early);
  } else {
    line.num("throughput_msg_s", static_cast<double>(consumed.consumed) / elapsed_s);
    line.raw("latency_ms", consumed.latency.percentiles_json());
    if (pacer) line.num("rate_msg_s", options.rate);
  }
  line.integer("server_peak_rss_bytes", peak_rss);
  line.print();
  return consumed.consumed == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  auto options = bench::parse_common(args, "rabbitmq");
  auto queue_type = args.get("queue-type", "classic");
  if (queue_type != "classic" && queue_type != "quorum") {
    args.add_problem("--queue-type must be classic or quorum");
  }
  if (!args.finish()) return 2;
  return run(options, queue_type);
}
