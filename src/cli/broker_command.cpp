#include "cli/broker_command.h"

#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <future>
#include <thread>

#include "base/json_text.h"
#include "base/log.h"
#include "base/time_format.h"
#include "broker/host.h"
#include "broker/host_service.h"
#include "broker/server.h"
#include "broker_client/client.h"
#include "cli/command.h"
#include "http/router.h"
#include "http/server.h"
#include "io/runtime.h"
#include "metrics/registry.h"

namespace outrider::cli {
namespace {

const log::logger logger{"broker"};

constexpr std::string_view default_broker_address = "127.0.0.1:7450";

struct broker_settings {
  std::string data_dir = "outrider-data/broker";
  std::string listen = std::string(default_broker_address);
  std::string unix_socket;
  std::string metrics_listen = "127.0.0.1:7451";
  std::string ready_file;
  config::byte_size max_body{1024 * 1024};
  std::uint32_t io_threads = 1;
  config::byte_size segment_size{64ULL << 20};
  bool repair = false;
  bool deliver_after_fsync = false;
  bool engine_thread = false;
  bool prepare_segments = true;
};

void declare(config::settings& s, broker_settings& b) {
  s.add("broker.dataDir", &b.data_dir, "directory of the log and the delay index",
        "OUTRIDER_BROKER_DATA_DIR", "data-dir");
  s.add("broker.listen", &b.listen, "TCP address for clients (host:port)", "OUTRIDER_BROKER_LISTEN",
        "listen");
  s.add("broker.unixSocket", &b.unix_socket, "also listen on this Unix socket path",
        "OUTRIDER_BROKER_UNIX_SOCKET", "unix-socket");
  s.add("broker.metricsListen", &b.metrics_listen,
        "HTTP address for /metrics and /healthz (empty: off)", "OUTRIDER_BROKER_METRICS_LISTEN",
        "metrics-listen");
  s.add("broker.readyFile", &b.ready_file,
        "write the bound addresses as JSON to this file when ready", "", "ready-file");
  s.add("broker.maxBodyBytes", &b.max_body, "largest message body accepted",
        "OUTRIDER_BROKER_MAX_BODY", "max-body");
  s.add("broker.ioThreads", &b.io_threads, "threads serving client connections",
        "OUTRIDER_BROKER_IO_THREADS", "io-threads");
  s.add("broker.segmentBytes", &b.segment_size, "size of one log segment file", "", "segment-size");
  s.add("broker.repair", &b.repair,
        "truncate a corrupted log at the damage instead of refusing to start", "", "repair");
  s.add("broker.deliverAfterFsync", &b.deliver_after_fsync,
        "deliver a message only once its publish is durable (default: at append; confirms "
        "always wait for fsync)",
        "OUTRIDER_BROKER_DELIVER_AFTER_FSYNC", "deliver-after-fsync");
  s.add("broker.engineThread", &b.engine_thread,
        "run the engine on a thread of its own (default: on the first connection thread, which "
        "saves a thread hop and its context switch per publish batch, ack and delivery)",
        "OUTRIDER_BROKER_ENGINE_THREAD", "engine-thread");
  s.add("broker.prepareSegments", &b.prepare_segments,
        "write the next log segment ahead (zeros, off the commit path) so that group commits "
        "overwrite allocated blocks",
        "OUTRIDER_BROKER_PREPARE_SEGMENTS", "prepare-segments");
}

status write_ready_file(const std::string& path, const std::vector<std::string>& addresses,
                        const std::string& metrics) {
  std::string json = "{\"broker\":[";
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (i > 0) json += ',';
    append_json_string(json, addresses[i]);
  }
  json += "],\"metrics\":";
  append_json_string(json, metrics);
  json += "}\n";
  return write_file_atomically(path, json);
}

int run_broker(const broker_settings& b) {
  io::block_shutdown_signals();
  if (b.io_threads == 0)
    return report_failure(error(errc::config_invalid, "--io-threads must be at least 1"));
  // Client connections, log segments and the delay index's files (a checkpoint
  // holds hundreds open at once).
  raise_open_file_limit(logger, 0, "the broker");
  metrics::registry registry;
  // Declared before the host so that it outlives it: the host's engine runs on
  // its first connection thread (host_options::engine_context) unless
  // --engine-thread.
  io::runtime rt(b.io_threads);
  broker::host_options host_opts;
  if (!b.engine_thread) host_opts.engine_context = &rt.context(0);
  host_opts.data_dir = b.data_dir;
  host_opts.log.segment_bytes = b.segment_size.bytes;
  host_opts.log.repair = b.repair;
  host_opts.log.prepare_segments = b.prepare_segments;
  host_opts.deliver_after_fsync = b.deliver_after_fsync;
  host_opts.engine.max_body_bytes = b.max_body.bytes;
  auto h = broker::host::open(io::posix_file_system(), host_opts, &registry);
  if (!h) return report_failure(h.error());
  auto& host = **h;
  host.start();
  rt.start();  // runs the engine from here on (every exit path below stops the host)

  broker::host_service svc(host);
  broker::server_options server_opts;
  server_opts.listen = {b.listen};
  if (!b.unix_socket.empty()) server_opts.listen.push_back("unix:" + b.unix_socket);
  server_opts.max_body_bytes = static_cast<std::uint32_t>(b.max_body.bytes);
  broker::server srv(rt, server_opts, svc);
  if (auto s = srv.start(); !s) {
    host.stop();
    rt.stop();
    return report_failure(s.error());
  }

  http::router routes;
  routes.add_sync("GET", "/metrics", [&registry](const http::request&) {
    return http::response::with_body(200, registry.expose(), "text/plain; version=0.0.4");
  });
  routes.add_sync("GET", "/healthz",
                  [](const http::request&) { return http::response::no_content(); });
  std::unique_ptr<http::server> metrics_server;
  if (!b.metrics_listen.empty()) {
    http::server_options mo;
    mo.listen = b.metrics_listen;
    metrics_server = std::make_unique<http::server>(rt, mo, routes.as_handler());
    if (auto s = metrics_server->start(); !s) {
      srv.stop(nanoseconds::zero());
      host.stop();
      rt.stop();
      return report_failure(s.error());
    }
  }

  const auto addresses = srv.addresses();
  const std::string metrics_address = metrics_server ? metrics_server->address() : "";
  std::string listening;
  for (const auto& a : addresses) listening += (listening.empty() ? "" : ", ") + a;
  std::printf("outrider broker listening on %s%s%s\n", listening.c_str(),
              metrics_address.empty() ? "" : "; metrics on http://", metrics_address.c_str());
  std::fflush(stdout);
  if (!b.ready_file.empty()) {
    if (auto s = write_ready_file(b.ready_file, addresses, metrics_address); !s)
      logger.warn("{}", s.error().message);
  }

  int signal_number = io::wait_for_shutdown_signal();
  logger.info(
      "signal {}: stopping (in-flight publishes are confirmed or refused, nothing confirmed is "
      "lost)",
      signal_number);
  srv.stop(std::chrono::seconds(10));
  if (metrics_server) metrics_server->stop(std::chrono::seconds(1));
  host.stop();
  rt.stop();
  logger.info("stopped");
  return 0;
}

// Runs one admin call against a broker on a private io_context.
template <class Call>
int with_client(const std::string& address, Call call) {
  boost::asio::io_context ctx{1};
  broker_client::client_options o;
  o.address = address;
  o.client_name = "outrider-admin";
  auto client = broker_client::client::create(ctx, o);
  int code = 0;
  client->connect([&](status s) {
    if (!s) {
      code = report_failure(error(
          s.error().code, "cannot reach the broker at " + address + ": " + s.error().message));
      client->close();
      return;
    }
    call(*client, [&](int c) {
      code = c;
      client->close();
    });
  });
  ctx.run();
  return code;
}

std::string format_time(wall_time t) {
  return t == wall_time{} ? "-" : format_rfc3339(t);
}

}  // namespace

void add_broker_commands(CLI::App& app, int* exit_code) {
  // --- outrider broker ---
  auto* cmd = app.add_subcommand(
      "broker", "Run the embedded broker (durable queues, topics, delayed delivery)");
  auto settings = std::make_shared<config::settings>();
  auto values = std::make_shared<broker_settings>();
  declare(*settings, *values);
  auto bound = bound_settings::bind(*cmd, *settings);
  cmd->callback([bound, values, settings, exit_code] {
    if (auto s = bound->resolve(); !s) {
      *exit_code = report_failure(s.error());
      return;
    }
    *exit_code = run_broker(*values);
  });

  // --- admin verbs ---
  auto broker_address = std::make_shared<std::string>(default_broker_address);
  auto add_address = [broker_address](CLI::App* c) {
    c->add_option("-b,--broker", *broker_address, "broker address (host:port or unix:/path)")
        ->envname("OUTRIDER_BROKER_ADDRESS")
        ->capture_default_str();
  };

  auto* queues = app.add_subcommand(
      "queues", "List the broker's queues with depth, in flight, scheduled and dead letters");
  add_address(queues);
  queues->callback([broker_address, exit_code] {
    *exit_code = with_client(*broker_address, [](broker_client::client& c, auto finish) {
      c.list_queues([finish](result<std::vector<broker_client::queue_info>> r) {
        if (!r) return finish(report_failure(r.error()));
        std::printf("%-40s %10s %10s %10s %12s %9s\n", "QUEUE", "READY", "IN FLIGHT", "SCHEDULED",
                    "DEAD LETTERS", "CONSUMERS");
        for (const auto& q : *r) {
          std::printf("%-40s %10llu %10llu %10llu %12llu %9u\n", q.name.c_str(),
                      static_cast<unsigned long long>(q.ready),
                      static_cast<unsigned long long>(q.in_flight),
                      static_cast<unsigned long long>(q.scheduled),
                      static_cast<unsigned long long>(q.dead_letters), q.consumers);
        }
        finish(0);
      });
    });
  });

  auto* peek = app.add_subcommand(
      "peek", "Show messages of a queue or dead-letter queue without consuming them");
  add_address(peek);
  auto peek_queue = std::make_shared<std::string>();
  auto peek_max = std::make_shared<std::uint32_t>(10);
  peek->add_option("queue", *peek_queue, "queue or dead-letter queue (e.g. orders.dlq)")
      ->required();
  peek->add_option("-n,--max", *peek_max, "messages to show")->capture_default_str();
  peek->callback([broker_address, peek_queue, peek_max, exit_code] {
    *exit_code = with_client(*broker_address, [&](broker_client::client& c, auto finish) {
      c.peek(
          *peek_queue, *peek_max, [finish](result<std::vector<broker_client::peeked_message>> r) {
            if (!r) return finish(report_failure(r.error()));
            static constexpr const char* states[] = {"ready", "leased", "retry_wait", "scheduled"};
            for (const auto& m : *r) {
              std::printf("%s  state=%s failed_attempts=%u published=%s deliver_at=%s\n",
                          m.id.to_string().c_str(), states[static_cast<int>(m.state)],
                          m.failed_attempts, format_time(m.published_at).c_str(),
                          format_time(m.deliver_at).c_str());
              for (const auto& [k, v] : m.headers) std::printf("  %s: %s\n", k.c_str(), v.c_str());
              std::printf("  body (%zu bytes): %.*s\n", m.body.size(),
                          static_cast<int>(std::min<std::size_t>(m.body.size(), 200)),
                          m.body.data());
            }
            finish(0);
          });
    });
  });

  auto* replay = app.add_subcommand("replay", "Move dead letters back to the queue they came from");
  add_address(replay);
  auto replay_queue = std::make_shared<std::string>();
  auto replay_max = std::make_shared<std::uint32_t>(0);
  replay->add_option("dead-letter-queue", *replay_queue, "dead-letter queue (e.g. orders.dlq)")
      ->required();
  replay->add_option("-n,--max", *replay_max, "messages to replay (0: all)")->capture_default_str();
  replay->callback([broker_address, replay_queue, replay_max, exit_code] {
    *exit_code = with_client(*broker_address, [&](broker_client::client& c, auto finish) {
      c.replay_dead_letters(*replay_queue, *replay_max, [finish](result<std::uint64_t> r) {
        if (!r) return finish(report_failure(r.error()));
        std::printf("replayed %llu message(s)\n", static_cast<unsigned long long>(*r));
        finish(0);
      });
    });
  });

  auto* cancel = app.add_subcommand("cancel", "Cancel a scheduled (delayed) message by its id");
  add_address(cancel);
  auto cancel_id = std::make_shared<std::string>();
  cancel->add_option("message-id", *cancel_id, "the message id (26-character id or 32 hex digits)")
      ->required();
  cancel->callback([broker_address, cancel_id, exit_code] {
    auto id = id128::parse(*cancel_id);
    if (!id) id = id128::parse_hex(*cancel_id);
    if (!id) {
      *exit_code =
          report_failure(error(errc::invalid_argument, "'" + *cancel_id + "' is not a message id"));
      return;
    }
    *exit_code = with_client(*broker_address, [&](broker_client::client& c, auto finish) {
      c.cancel_scheduled(*id, [finish, text = *cancel_id](status s) {
        if (!s) return finish(report_failure(s.error()));
        std::printf("cancelled %s\n", text.c_str());
        finish(0);
      });
    });
  });
}

}  // namespace outrider::cli
