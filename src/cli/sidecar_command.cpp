#include "cli/sidecar_command.h"

#include <CLI/CLI.hpp>
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
};

void declare(config::settings& s, sidecar_cli_settings& c) {
  s.add("sidecar.brokerAddress", &c.broker_address,
        "the embedded broker's address (host:port or unix:/path) for the pub/sub component",
        "OUTRIDER_BROKER_ADDRESS", "broker");
  s.add("sidecar.ioThreads", &c.io_threads, "threads serving the API and calling the app",
        "OUTRIDER_SIDECAR_IO_THREADS", "io-threads");
}

// The pub/sub component's metadata map ({address: ...}) as the registry takes it.
config::node component_metadata(const sidecar_cli_settings& c) {
  config::node root(config::node::kind::map, {}, "sidecar.pubsub");
  config::node address(config::node::kind::scalar, {}, "sidecar.brokerAddress");
  address.set_scalar(c.broker_address);
  root.add_entry("address", std::move(address));
  return root;
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
  io::runtime rt(c.io_threads);
  auto made = backends::create(o.pubsub_type, component_metadata(c), {&rt, o.app_id});
  if (!made) return report_failure(made.error());
  std::shared_ptr<backends::backend> backend = std::move(*made);
  metrics::registry registry;
  rt.start();
  int code = 0;
  {
    sidecar::sidecar sc(rt, o, {{o.pubsub_name, o.pubsub_type, backend}}, registry);
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
      std::printf("\n");
      std::fflush(stdout);
      logger.info("app '{}', pub/sub '{}' ({}, broker {}); ready in {} us", o.app_id, o.pubsub_name,
                  o.pubsub_type, c.broker_address, ready_us);
      const int signal_number = io::wait_for_shutdown_signal();
      logger.info("signal {}: stopping (in-flight deliveries finish or are released)",
                  signal_number);
    }
    sc.stop();
  }
  backend->close();
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
  cmd->callback([bound, options, values, settings, exit_code] {
    // Start-to-ready is measured from here (argument parsing done).
    const auto started = std::chrono::steady_clock::now();
    if (auto s = bound->resolve(); !s) {
      *exit_code = report_failure(s.error());
      return;
    }
    *exit_code = run_sidecar(*values, *options, started);
  });
}

}  // namespace outrider::cli
