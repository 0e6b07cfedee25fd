// sidecar_options: everything `outrider sidecar` is configured with, and the
// declaration of each setting (YAML key under `sidecar.`, environment variable
// with Dapr's name where Dapr has one, flag).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "config/settings.h"
#include "sidecar/configuration.h"
#include "sidecar/subscription.h"

namespace outrider::sidecar {

// Backoff between delivery attempts: initial * multiplier^(attempt-1), capped
// at `max`, each spread by ±jitter (a fraction). After max_attempts failed
// attempts the message goes to the dead-letter topic (or the backend's
// dead-letter store). The backend's retry-after does the waiting durably.
struct retry_policy {
  nanoseconds initial = std::chrono::seconds(1);
  nanoseconds max = std::chrono::seconds(60);
  double multiplier = 2.0;
  double jitter = 0.2;
  std::uint32_t max_attempts = 10;
};

struct app_health_options {
  bool enabled = false;
  std::string path = "/healthz";
  nanoseconds interval = std::chrono::seconds(5);
  nanoseconds timeout = std::chrono::milliseconds(500);
  std::uint32_t threshold = 3;  // consecutive failures before the app counts as unhealthy
};

// Tracing (docs/tracing.md). Off unless an endpoint is given; without one the
// sidecar still passes traceparent/tracestate through unchanged.
struct trace_options {
  std::string endpoint;   // OTLP .../v1/traces or Zipkin .../api/v2/spans
  std::string protocol;   // otlp | otlp-json | zipkin; "" guesses from the endpoint
  double sampling = 1.0;  // ratio for traces the sidecar starts; children follow their parent
  // Ratio for the app health probes' traces (each probe is a trace of its own; 0: not traced).
  double probe_sampling = 0.0;
  std::uint16_t app_otlp_port = 0;  // OTLP/HTTP receiver for the app's spans; 0: off
  // How a delivery span relates to the message's creation context: "child"
  // (same trace) or "link" (a new trace linked to the creation context).
  std::string consumer_parent = "child";
  bool emit_b3 = false;            // also send a b3 header to the app
  std::uint32_t max_queue = 8192;  // exporter queue, spans (dropped and counted beyond)
  std::uint32_t max_batch = 1024;  // spans per export request (as tracing::exporter_options)
};

// StatsD from the app (UDP on listen_host), exposed on /metrics with the
// prefix `app_`; bounded (see metrics/statsd.h).
struct statsd_listen_options {
  bool enabled = false;
  std::uint16_t port = 8125;  // 0 picks a free port
  std::uint32_t max_metrics = 200;
  std::uint32_t max_series_per_metric = 100;
};

struct sidecar_options {
  std::string app_id;
  std::uint16_t app_port = 0;  // 0: no app (publish only)
  std::string app_host = "127.0.0.1";
  std::string listen_host = "127.0.0.1";
  std::uint16_t http_port = 3500;  // 0 picks a free port
  bool serve_metrics = true;
  std::uint16_t metrics_port = 9090;
  std::string pubsub_name = "pubsub";    // the component name apps use
  std::string pubsub_type = "embedded";  // backends registry type
  std::uint32_t max_in_flight = 64;      // deliveries to the app at once
  // Publishes (bulk entries count one each) awaiting the backend at once; beyond: 429.
  std::uint32_t max_publishes_in_flight = 1024;
  // Open connections to the API port at once; beyond: a new one is closed at
  // once. Bounds memory when an app opens a connection per outstanding call.
  std::uint32_t max_connections = 4096;
  nanoseconds app_timeout = std::chrono::seconds(30);  // one delivery call
  nanoseconds lease = std::chrono::seconds(60);        // backend lease per delivery (> app_timeout)
  retry_policy retry;
  app_health_options app_health;
  std::string api_token;      // required from apps when set (dapr-api-token)
  std::string app_api_token;  // sent to the app when set
  nanoseconds subscribe_retry_interval = std::chrono::milliseconds(500);
  nanoseconds shutdown_grace = std::chrono::seconds(5);
  config::byte_size max_body{4 * 1024 * 1024};
  config::byte_size max_stream_body{0};  // streamed invocation/proxy bodies; 0: unlimited
  std::uint32_t max_header_bytes = 16 * 1024;
  std::string runtime_version = "outrider";
  std::vector<subscription> subscriptions;  // declarative (YAML)
  trace_options tracing;
  statsd_listen_options statsd;
  std::vector<config_store_spec> configuration_stores;              // YAML configurationStores
  nanoseconds configuration_poll = std::chrono::milliseconds(500);  // file store re-read interval
  // Ambassador and invocation (see outbound.h).
  std::vector<std::string> resources_paths;  // --resources-path DIR (repeatable)
  std::string resolve_file;                  // YAML apps: {id: "host:port"}, re-read on change
  std::map<std::string, std::string> apps;   // static name resolution (YAML `apps:`)
  std::uint16_t proxy_port = 0;              // forward proxy; 0: off
  nanoseconds invoke_timeout = std::chrono::seconds(60);  // calls without a timeout policy
};

// Declares every setting of `o` on `s` (keys "sidecar.appId", ...; the YAML
// `subscriptions:` section). `o` must outlive `s`'s use.
void declare_settings(config::settings& s, sidecar_options& o);

}  // namespace outrider::sidecar
