#include "cli/sidecar_command.h"

#include <malloc.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>

#include "backends/registry.h"
#include "base/log.h"
#include "cli/command.h"
#include "config/node.h"
#include "io/runtime.h"
#include "metrics/registry.h"
#include "sidecar/options.h"
#include "sidecar/sidecar.h"

namespace outrider::cli {
namespace {

const log::logger logger{"sidecar"};

// What `outrider sidecar` adds to the sidecar's own settings: where its
// pub/sub component lives and how many I/O threads serve it.
struct sidecar_cli_settings {
  std::string broker_address = "127.0.0.1:7450";
  std::uint32_t io_threads = 1;
  // The rabbitmq backend's component metadata (--pubsub-type rabbitmq).
  std::string rabbitmq_url = "amqp://127.0.0.1:5672/";
  std::string rabbitmq_username;
  std::string rabbitmq_password;
  std::string rabbitmq_queue_type = "quorum";
  std::string rabbitmq_cloudevents_mode = "structured";
  std::string rabbitmq_ca_cert;
  std::string rabbitmq_client_cert;
  std::string rabbitmq_client_key;
};

void declare(config::settings& s, sidecar_cli_settings& c) {
  s.add("sidecar.brokerAddress", &c.broker_address,
        "the embedded broker's address (host:port or unix:/path) for the pub/sub component",
        "OUTRIDER_BROKER_ADDRESS", "broker");
  s.add("sidecar.rabbitmq.url", &c.rabbitmq_url,
        "RabbitMQ for --pubsub-type rabbitmq: amqp://host:port/vhost or amqps://...",
        "OUTRIDER_RABBITMQ_URL", "rabbitmq-url");
  s.add("sidecar.rabbitmq.username", &c.rabbitmq_username, "RabbitMQ user (overrides the URL's)",
        "OUTRIDER_RABBITMQ_USERNAME");
  s.add("sidecar.rabbitmq.password", &c.rabbitmq_password,
        "RabbitMQ password (overrides the URL's; never logged)", "OUTRIDER_RABBITMQ_PASSWORD");
  s.add("sidecar.rabbitmq.queueType", &c.rabbitmq_queue_type,
        "subscription queue type: quorum or classic", "OUTRIDER_RABBITMQ_QUEUE_TYPE",
        "rabbitmq-queue-type");
  s.add("sidecar.rabbitmq.cloudEventsMode", &c.rabbitmq_cloudevents_mode,
        "CloudEvents in AMQP: structured (the event as the body) or binary (cloudEvents: "
        "application properties, the data as the body)",
        "OUTRIDER_RABBITMQ_CLOUDEVENTS_MODE", "rabbitmq-cloudevents-mode");
  s.add("sidecar.rabbitmq.caCert", &c.rabbitmq_ca_cert, "CA bundle (PEM) for amqps",
        "OUTRIDER_RABBITMQ_CA_CERT");
  s.add("sidecar.rabbitmq.clientCert", &c.rabbitmq_client_cert,
        "client certificate (PEM) for amqps", "OUTRIDER_RABBITMQ_CLIENT_CERT");
  s.add("sidecar.rabbitmq.clientKey", &c.rabbitmq_client_key, "client key (PEM) for amqps",
        "OUTRIDER_RABBITMQ_CLIENT_KEY");
  s.add("sidecar.ioThreads", &c.io_threads, "threads serving the API and calling the app",
        "OUTRIDER_SIDECAR_IO_THREADS", "io-threads");
}

// The pub/sub component's metadata map ({address: ...}) as the registry takes it.
config::node component_metadata(const sidecar_cli_settings& c, const std::string& type) {
  config::node root(config::node::kind::map, {}, "sidecar.pubsub");
  auto add = [&root](const char* key, const std::string& value, const char* setting) {
    if (value.empty()) return;
    config::node n(config::node::kind::scalar, {}, setting);
    n.set_scalar(value);
    root.add_entry(key, std::move(n));
  };
  if (type == "rabbitmq") {
    add("connectionString", c.rabbitmq_url, "sidecar.rabbitmq.url");
    add("username", c.rabbitmq_username, "sidecar.rabbitmq.username");
    add("password", c.rabbitmq_password, "sidecar.rabbitmq.password");
    add("queueType", c.rabbitmq_queue_type, "sidecar.rabbitmq.queueType");
    add("cloudEventsMode", c.rabbitmq_cloudevents_mode, "sidecar.rabbitmq.cloudEventsMode");
    add("caCert", c.rabbitmq_ca_cert, "sidecar.rabbitmq.caCert");
    add("clientCert", c.rabbitmq_client_cert, "sidecar.rabbitmq.clientCert");
    add("clientKey", c.rabbitmq_client_key, "sidecar.rabbitmq.clientKey");
    return root;
  }
  add("address", c.broker_address, "sidecar.brokerAddress");
  return root;
}

// glibc keeps freed heap in its arenas: after a burst (thousands of requests in
// flight) the sidecar would stay at its peak RSS. A periodic malloc_trim (every
// arena) returns it. The number of arenas is glibc's (one per thread, up to 8 per
// core): each I/O thread needs an arena of its own. With M_ARENA_MAX 2 (as before
// session 9) every non-main thread shared one arena, so under load the I/O threads
// took turns on its lock (0.16 futex calls and a context switch or more per proxied
// request at 2 I/O threads) and passed its lines between the cores.
constexpr auto trim_interval = std::chrono::seconds(10);

// The timer lives until the runtime's threads are joined.
void trim_memory_periodically(boost::asio::steady_timer& timer) {
  timer.expires_after(trim_interval);
  timer.async_wait([&timer](const boost::system::error_code& ec) {
    if (ec) return;
    ::malloc_trim(0);
    trim_memory_periodically(timer);
  });
}

int run_sidecar(const sidecar_cli_settings& c, const sidecar::sidecar_options& o,
                std::chrono::steady_clock::time_point started) {
  io::block_shutdown_signals();
  if (o.app_id.empty()) {
    return report_failure(
        error(errc::config_invalid, "an app id is required (--app-id, APP_ID or sidecar.appId)"));
  }
  if (c.io_threads == 0) {
    return report_failure(error(errc::config_invalid, "--io-threads must be at least 1"));
  }
  // Inbound connections up to the limit, plus the app, the broker, peers and files.
  raise_open_file_limit(logger, std::uint64_t{o.max_connections} + 256, "--max-connections");
  io::runtime rt(c.io_threads);
  // Deliveries on a thread of their own: the subscriptions' broker connection,
  // the app calls and the acks, apart from the API, the publishes and confirms.
  io::runtime deliveries(1);
  auto made = backends::create(o.pubsub_type, component_metadata(c, o.pubsub_type),
                               {&rt, o.app_id, &deliveries});
  if (!made) return report_failure(made.error());
  std::shared_ptr<backends::backend> backend = std::move(*made);
  metrics::registry registry;
  rt.start();
  deliveries.start();
  // Named so that per-thread figures (top -H, /proc/PID/task/*/comm, the
  // sidecar-publish benchmark's publish CPU) tell it from the I/O threads.
  deliveries.post(0, [] { pthread_setname_np(pthread_self(), "deliveries"); });
  boost::asio::steady_timer trimmer(rt.context(0));
  trim_memory_periodically(trimmer);
  int code = 0;
  {
    sidecar::sidecar sc(rt, o, {{o.pubsub_name, o.pubsub_type, backend}}, registry, &deliveries);
    if (auto s = sc.start(); !s) {
      code = report_failure(s.error());
    } else {
      const auto ready_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
      std::printf("outrider sidecar listening on %s:%u", o.listen_host.c_str(), sc.http_port());
      if (sc.metrics_port() != 0) {
        std::printf("; metrics on http://%s:%u/metrics", o.listen_host.c_str(), sc.metrics_port());
      }
      if (sc.app_otlp_port() != 0) {
        std::printf("; app OTLP on http://%s:%u/v1/traces", o.listen_host.c_str(),
                    sc.app_otlp_port());
      }
      if (sc.statsd_port() != 0) {
        std::printf("; statsd on udp %s:%u", o.listen_host.c_str(), sc.statsd_port());
      }
      std::printf("\n");
      std::fflush(stdout);
      // Never the RabbitMQ URL: it may carry a password.
      logger.info(
          "app '{}', pub/sub '{}' ({}{}); ready in {} us", o.app_id, o.pubsub_name, o.pubsub_type,
          o.pubsub_type == "embedded" ? ", broker " + c.broker_address : std::string(), ready_us);
      const int signal_number = io::wait_for_shutdown_signal();
      logger.info("signal {}: stopping (in-flight deliveries finish or are released)",
                  signal_number);
    }
    sc.stop();
  }
  backend->close();
  deliveries.stop();
  rt.stop();
  logger.info("stopped");
  return code;
}

}  // namespace

void add_sidecar_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "sidecar", "Run the Dapr-compatible sidecar next to one app (pub/sub, delivery, health)");
  auto settings = std::make_shared<config::settings>();
  auto options = std::make_shared<sidecar::sidecar_options>();
  auto values = std::make_shared<sidecar_cli_settings>();
  sidecar::declare_settings(*settings, *options);
  declare(*settings, *values);
  auto bound = bound_settings::bind(*cmd, *settings);
  auto resources_paths = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--resources-path", *resources_paths,
                  "directory of Dapr-shaped resources (bindings.http components, Resiliency, "
                  "HTTPEndpoint); repeatable");
  cmd->callback([bound, options, values, settings, resources_paths, exit_code] {
    // Start-to-ready is measured from here (argument parsing done).
    const auto started = std::chrono::steady_clock::now();
    if (auto s = bound->resolve(); !s) {
      *exit_code = report_failure(s.error());
      return;
    }
    options->resources_paths.insert(options->resources_paths.end(), resources_paths->begin(),
                                    resources_paths->end());
    *exit_code = run_sidecar(*values, *options, started);
  });
}

}  // namespace outrider::cli
