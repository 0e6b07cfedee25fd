#include "cli/collector_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "analysis/routes.h"
#include "base/json_text.h"
#include "base/log.h"
#include "cli/command.h"
#include "http/router.h"
#include "http/server.h"
#include "io/file_system.h"
#include "io/runtime.h"
#include "metrics/registry.h"
#include "tracing/collector.h"
#include "tracing/span_store.h"
#include "ui_assets/ui_assets.h"

namespace outrider::cli {
namespace {

const log::logger logger{"collector"};

// A gzip body may inflate to this many times --max-body (413 beyond).
constexpr std::uint64_t gzip_expansion_allowed = 4;

struct collector_settings {
  std::string data_dir = "outrider-data/collector";
  std::string otlp_listen = "127.0.0.1:4318";    // OTLP/HTTP's default port
  std::string zipkin_listen = "127.0.0.1:9411";  // Zipkin's default port
  std::string ready_file;
  nanoseconds retention = std::chrono::hours(24 * 7);
  config::byte_size max_store{0};
  config::byte_size segment_size{64ULL << 20};
  config::byte_size max_body{8ULL << 20};
  std::uint64_t max_queued_spans = 200000;
  std::string autocomplete_keys;
  std::uint32_t io_threads = 1;
  std::string ui_dir;
};

void declare(config::settings& s, collector_settings& c) {
  s.add("collector.dataDir", &c.data_dir, "directory of the span store",
        "OUTRIDER_COLLECTOR_DATA_DIR", "data-dir");
  s.add("collector.otlpListen", &c.otlp_listen, "OTLP/HTTP address (host:port; empty: off)",
        "OUTRIDER_COLLECTOR_OTLP_LISTEN", "otlp-listen");
  s.add("collector.zipkinListen", &c.zipkin_listen,
        "Zipkin address: POST /api/v2/spans, the query API, /metrics (host:port)",
        "OUTRIDER_COLLECTOR_ZIPKIN_LISTEN", "zipkin-listen");
  s.add("collector.readyFile", &c.ready_file,
        "write the bound addresses as JSON to this file when ready", "", "ready-file");
  s.add("collector.retention", &c.retention, "drop spans stored longer ago than this (0: keep)",
        "OUTRIDER_COLLECTOR_RETENTION", "retention");
  s.add("collector.maxStoreBytes", &c.max_store,
        "drop the oldest spans beyond this store size (0: no limit)",
        "OUTRIDER_COLLECTOR_MAX_STORE_BYTES", "max-store-bytes");
  s.add("collector.segmentBytes", &c.segment_size,
        "size of one span store segment (the unit retention drops)", "", "segment-size");
  s.add("collector.maxBodyBytes", &c.max_body,
        "largest request body, compressed or not (413 beyond)", "OUTRIDER_COLLECTOR_MAX_BODY",
        "max-body");
  s.add("collector.maxQueuedSpans", &c.max_queued_spans,
        "spans waiting to be stored before requests get 429", "", "max-queued-spans");
  s.add("collector.autocompleteKeys", &c.autocomplete_keys,
        "comma-separated tag keys for /api/v2/autocompleteKeys (empty: every key seen)", "",
        "autocomplete-keys");
  s.add("collector.ioThreads", &c.io_threads, "threads serving HTTP connections",
        "OUTRIDER_COLLECTOR_IO_THREADS", "io-threads");
  s.add("collector.uiDir", &c.ui_dir,
        "serve the web UI from this directory instead of the built-in copy (development)", "",
        "ui-dir");
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

status write_ready_file(const std::string& path, const std::string& otlp,
                        const std::string& zipkin) {
  std::string json = "{\"otlp\":";
  append_json_string(json, otlp);
  json += ",\"zipkin\":";
  append_json_string(json, zipkin);
  json += "}\n";
  return write_file_atomically(path, json);
}

int run_collector(const collector_settings& c) {
  io::block_shutdown_signals();
  if (c.io_threads == 0)
    return report_failure(error(errc::config_invalid, "--io-threads must be at least 1"));
  if (c.zipkin_listen.empty())
    return report_failure(error(errc::config_invalid, "--zipkin-listen must not be empty"));
  raise_open_file_limit(logger, 0, "the collector");
  metrics::registry registry;
  tracing::span_store_options so;
  so.dir = c.data_dir;
  so.max_age = c.retention;
  so.max_bytes = c.max_store.bytes;
  so.segment_bytes = c.segment_size.bytes;
  so.autocomplete_keys = split_list(c.autocomplete_keys);
  auto store = tracing::span_store::open(io::posix_file_system(), so);
  if (!store) return report_failure(store.error());
  const auto st = (*store)->stats();
  logger.info("span store {}: {} spans, {} traces, {} bytes", c.data_dir, st.spans, st.traces,
              st.bytes_on_disk);

  tracing::collector_options co;
  co.max_decompressed_bytes = gzip_expansion_allowed * c.max_body.bytes;
  co.max_queued_spans = c.max_queued_spans;
  tracing::collector collector(**store, &registry, co);
  collector.start();

  io::runtime rt(c.io_threads);
  http::router otlp_routes;
  collector.add_otlp_routes(otlp_routes);
  http::router zipkin_routes;
  collector.add_zipkin_routes(zipkin_routes);
  analysis::add_routes(zipkin_routes, **store);  // /api/outrider/v1/graph and /analysis
  zipkin_routes.add_sync("GET", "/metrics", [&registry](const http::request&) {
    return http::response::with_body(200, registry.expose(), "text/plain; version=0.0.4");
  });
  // The web UI at / (lowest precedence: every API route above wins).
  ui_assets::add_ui_routes(zipkin_routes, ui_assets::ui_options{c.ui_dir}, io::posix_file_system());
  // One port for both when they are configured the same (port 0 asks for a free port each).
  const bool one_port = c.otlp_listen == c.zipkin_listen && !c.zipkin_listen.ends_with(":0");
  if (one_port) collector.add_otlp_routes(zipkin_routes);

  http::server_options zo;
  zo.listen = c.zipkin_listen;
  zo.body_limit = c.max_body.bytes;
  http::server zipkin_server(rt, zo, zipkin_routes.as_handler());
  if (auto s = zipkin_server.start(); !s) return report_failure(s.error());
  std::unique_ptr<http::server> otlp_server;
  if (!c.otlp_listen.empty() && !one_port) {
    http::server_options oo;
    oo.listen = c.otlp_listen;
    oo.body_limit = c.max_body.bytes;
    otlp_server = std::make_unique<http::server>(rt, oo, otlp_routes.as_handler());
    if (auto s = otlp_server->start(); !s) {
      zipkin_server.stop(nanoseconds::zero());
      return report_failure(s.error());
    }
  }
  rt.start();

  const std::string otlp_address = otlp_server ? otlp_server->address() : zipkin_server.address();
  std::printf("outrider collector listening on http://%s (OTLP/HTTP) and http://%s (Zipkin API)\n",
              otlp_address.c_str(), zipkin_server.address().c_str());
  std::fflush(stdout);
  logger.info("web UI on http://{}/{}", zipkin_server.address(),
              c.ui_dir.empty() ? std::string() : " (files from " + c.ui_dir + ")");
  if (!c.ready_file.empty()) {
    if (auto s = write_ready_file(c.ready_file, otlp_address, zipkin_server.address()); !s) {
      logger.warn("{}", s.error().message);
    }
  }

  const int signal_number = io::wait_for_shutdown_signal();
  logger.info("signal {}: stopping (queued spans are stored first)", signal_number);
  if (otlp_server) otlp_server->stop(std::chrono::seconds(10));
  zipkin_server.stop(std::chrono::seconds(10));
  collector.stop();
  rt.stop();
  logger.info("stopped");
  return 0;
}

}  // namespace

void add_collector_commands(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "collector",
      "Run the trace collector (OTLP/HTTP and Zipkin receivers, span store, Zipkin query API)");
  auto settings = std::make_shared<config::settings>();
  auto values = std::make_shared<collector_settings>();
  declare(*settings, *values);
  auto bound = bound_settings::bind(*cmd, *settings);
  cmd->callback([bound, values, settings, exit_code] {
    if (auto s = bound->resolve(); !s) {
      *exit_code = report_failure(s.error());
      return;
    }
    *exit_code = run_collector(*values);
  });
}

}  // namespace outrider::cli
