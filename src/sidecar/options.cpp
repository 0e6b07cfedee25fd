#include "sidecar/options.h"

namespace outrider::sidecar {

void declare_settings(config::settings& s, sidecar_options& o) {
  s.add("sidecar.appId", &o.app_id, "the app's id (competing-consumer group, CloudEvent source)",
        "APP_ID", "app-id");
  s.add("sidecar.appPort", &o.app_port, "the app's HTTP port on 127.0.0.1 (0: no app)", "APP_PORT",
        "app-port");
  s.add("sidecar.appHost", &o.app_host, "the app's host", "OUTRIDER_SIDECAR_APP_HOST", "app-host");
  s.add("sidecar.listenHost", &o.listen_host, "address the sidecar API binds to",
        "OUTRIDER_SIDECAR_LISTEN_HOST", "listen-host");
  s.add("sidecar.httpPort", &o.http_port, "the sidecar's HTTP API port", "DAPR_HTTP_PORT",
        "dapr-http-port");
  s.add("sidecar.metricsPort", &o.metrics_port, "Prometheus metrics port",
        "OUTRIDER_SIDECAR_METRICS_PORT", "metrics-port");
  s.add("sidecar.serveMetrics", &o.serve_metrics, "serve /metrics on the metrics port",
        "OUTRIDER_SIDECAR_SERVE_METRICS", "serve-metrics");
  s.add("sidecar.pubsubName", &o.pubsub_name, "the pub/sub component name apps publish to",
        "OUTRIDER_SIDECAR_PUBSUB_NAME", "pubsub-name");
  s.add("sidecar.pubsubType", &o.pubsub_type, "the backend type (embedded, rabbitmq)",
        "OUTRIDER_SIDECAR_PUBSUB_TYPE", "pubsub-type");
  s.add("sidecar.appMaxConcurrency", &o.max_in_flight, "deliveries in flight to the app at once",
        "OUTRIDER_SIDECAR_APP_MAX_CONCURRENCY", "app-max-concurrency");
  s.add("sidecar.maxPublishesInFlight", &o.max_publishes_in_flight,
        "publishes awaiting the backend at once (bulk entries count one each); beyond it a "
        "publish is answered 429 with Retry-After",
        "OUTRIDER_SIDECAR_MAX_PUBLISHES_IN_FLIGHT", "max-publishes-in-flight");
  s.add("sidecar.maxConnections", &o.max_connections,
        "open connections to the API port at once; beyond it a new connection is closed",
        "OUTRIDER_SIDECAR_MAX_CONNECTIONS", "max-connections");
  s.add("sidecar.appTimeout", &o.app_timeout, "timeout of one delivery call to the app",
        "OUTRIDER_SIDECAR_APP_TIMEOUT", "app-timeout");
  s.add("sidecar.lease", &o.lease, "how long a delivery is leased before redelivery",
        "OUTRIDER_SIDECAR_LEASE", "lease");
  s.add("sidecar.retry.initialInterval", &o.retry.initial, "first retry backoff",
        "OUTRIDER_SIDECAR_RETRY_INITIAL_INTERVAL", "retry-initial-interval");
  s.add("sidecar.retry.maxInterval", &o.retry.max, "largest retry backoff",
        "OUTRIDER_SIDECAR_RETRY_MAX_INTERVAL", "retry-max-interval");
  s.add("sidecar.retry.multiplier", &o.retry.multiplier, "backoff growth per attempt",
        "OUTRIDER_SIDECAR_RETRY_MULTIPLIER", "retry-multiplier");
  s.add("sidecar.retry.jitter", &o.retry.jitter, "backoff spread, a fraction (0.2 = ±20%)",
        "OUTRIDER_SIDECAR_RETRY_JITTER", "retry-jitter");
  s.add("sidecar.retry.maxAttempts", &o.retry.max_attempts,
        "delivery attempts before dead-lettering (0: unlimited)",
        "OUTRIDER_SIDECAR_RETRY_MAX_ATTEMPTS", "retry-max-attempts");
  s.add("sidecar.appHealth.enabled", &o.app_health.enabled, "probe the app's health",
        "OUTRIDER_SIDECAR_APP_HEALTH_CHECK", "enable-app-health-check");
  s.add("sidecar.appHealth.path", &o.app_health.path, "the app's health path",
        "OUTRIDER_SIDECAR_APP_HEALTH_PATH", "app-health-check-path");
  s.add("sidecar.appHealth.interval", &o.app_health.interval, "time between probes",
        "OUTRIDER_SIDECAR_APP_HEALTH_INTERVAL", "app-health-probe-interval");
  s.add("sidecar.appHealth.timeout", &o.app_health.timeout, "timeout of one probe",
        "OUTRIDER_SIDECAR_APP_HEALTH_TIMEOUT", "app-health-probe-timeout");
  s.add("sidecar.appHealth.threshold", &o.app_health.threshold,
        "failed probes in a row before the app is unhealthy",
        "OUTRIDER_SIDECAR_APP_HEALTH_THRESHOLD", "app-health-threshold");
  s.add("sidecar.apiToken", &o.api_token, "token apps must send as dapr-api-token",
        "DAPR_API_TOKEN");
  s.add("sidecar.appApiToken", &o.app_api_token, "token sent to the app as dapr-api-token",
        "APP_API_TOKEN");
  s.add("sidecar.maxBodySize", &o.max_body, "largest request body",
        "OUTRIDER_SIDECAR_MAX_BODY_SIZE", "max-body-size");
  s.add("sidecar.maxStreamBodySize", &o.max_stream_body,
        "largest streamed body on invocation and forward-proxy routes (0: unlimited)",
        "OUTRIDER_SIDECAR_MAX_STREAM_BODY_SIZE", "max-stream-body-size");
  s.add("sidecar.maxHeaderSize", &o.max_header_bytes, "largest request line + headers, bytes",
        "OUTRIDER_SIDECAR_MAX_HEADER_SIZE", "max-header-size");
  s.add("sidecar.shutdownGrace", &o.shutdown_grace, "time in-flight deliveries get at shutdown",
        "OUTRIDER_SIDECAR_SHUTDOWN_GRACE", "shutdown-grace");
  s.add("tracing.endpoint", &o.tracing.endpoint,
        "trace export URL: OTLP/HTTP .../v1/traces or Zipkin .../api/v2/spans (empty: off)",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "trace-endpoint");
  s.add("tracing.protocol", &o.tracing.protocol,
        "trace export protocol: otlp, otlp-json or zipkin (default: from the endpoint)",
        "OUTRIDER_TRACE_PROTOCOL", "trace-protocol");
  s.add("tracing.sampling", &o.tracing.sampling,
        "share of new traces recorded, 0..1 (children follow their parent)",
        "OUTRIDER_TRACE_SAMPLING", "trace-sampling");
  s.add("tracing.probeSampling", &o.tracing.probe_sampling,
        "share of app health probes traced, 0..1 (each probe is a trace of its own)",
        "OUTRIDER_TRACE_PROBE_SAMPLING", "trace-probe-sampling");
  s.add("tracing.appOtlpPort", &o.tracing.app_otlp_port,
        "port of the OTLP/HTTP receiver for the app's own spans (0: off)", "OUTRIDER_APP_OTLP_PORT",
        "app-otlp-port");
  s.add("tracing.consumerParent", &o.tracing.consumer_parent,
        "delivery spans: child of the message's creation context, or link to it (child|link)",
        "OUTRIDER_TRACE_CONSUMER_PARENT", "trace-consumer-parent");
  s.add("tracing.emitB3", &o.tracing.emit_b3, "also send a b3 header to the app",
        "OUTRIDER_TRACE_EMIT_B3", "trace-emit-b3");
  s.add("tracing.maxQueue", &o.tracing.max_queue,
        "spans queued for export at most (beyond: dropped and counted)", "OUTRIDER_TRACE_MAX_QUEUE",
        "trace-max-queue");
  s.add("tracing.maxBatch", &o.tracing.max_batch, "spans per export request",
        "OUTRIDER_TRACE_MAX_BATCH", "trace-max-batch");
  s.add("sidecar.statsd.enabled", &o.statsd.enabled, "receive the app's StatsD metrics over UDP",
        "OUTRIDER_SIDECAR_STATSD", "enable-statsd");
  s.add("sidecar.statsd.port", &o.statsd.port, "StatsD UDP port (0 picks a free one)",
        "OUTRIDER_SIDECAR_STATSD_PORT", "statsd-port");
  s.add("sidecar.statsd.maxMetrics", &o.statsd.max_metrics, "StatsD metric names kept at most",
        "OUTRIDER_SIDECAR_STATSD_MAX_METRICS", "statsd-max-metrics");
  s.add("sidecar.statsd.maxSeriesPerMetric", &o.statsd.max_series_per_metric,
        "StatsD tag combinations kept per metric", "OUTRIDER_SIDECAR_STATSD_MAX_SERIES",
        "statsd-max-series");
  s.add("sidecar.configurationPollInterval", &o.configuration_poll,
        "how often file configuration stores are re-read", "OUTRIDER_SIDECAR_CONFIGURATION_POLL",
        "configuration-poll-interval");
  s.add_section(
      "configurationStores",
      [&o](const config::node& n) -> status {
        auto stores = parse_config_stores_yaml(n);
        if (!stores) return stores.error();
        o.configuration_stores = std::move(*stores);
        return ok_status();
      },
      "configuration API stores: [{name, file | envPrefix}]");
  s.add("sidecar.resolveFile", &o.resolve_file,
        "name resolution file for service invocation (YAML apps: {id: \"host:port\"}), re-read "
        "when it changes",
        "OUTRIDER_SIDECAR_RESOLVE_FILE", "resolve-file");
  s.add("sidecar.proxyPort", &o.proxy_port, "forward-proxy port for the app's HTTP_PROXY (0: off)",
        "OUTRIDER_SIDECAR_PROXY_PORT", "proxy-port");
  s.add("sidecar.invokeTimeout", &o.invoke_timeout,
        "timeout of an outbound call (invocation, binding, proxy) without a timeout policy",
        "OUTRIDER_SIDECAR_INVOKE_TIMEOUT", "invoke-timeout");
  s.add_section(
      "sidecar.resourcesPaths",
      [&o](const config::node& n) -> status {
        if (!n.is_sequence()) return n.fail("expected a list of directories");
        for (const auto& item : n.items()) {
          if (!item.is_scalar()) return item.fail("expected a directory path");
          o.resources_paths.push_back(item.scalar());
        }
        return ok_status();
      },
      "directories of Dapr-shaped resources (Component bindings.http, Resiliency, HTTPEndpoint); "
      "the flag --resources-path may be repeated");
  s.add_section(
      "apps",
      [&o](const config::node& n) -> status {
        if (!n.is_map()) return n.fail("expected a map of app id to \"host:port\"");
        for (const auto& [id, v] : n.entries()) {
          if (!v.is_scalar() || v.scalar().find(':') == std::string::npos) {
            return v.fail("expected \"host:port\" of the app's sidecar");
          }
          o.apps[id] = v.scalar();
        }
        return ok_status();
      },
      "static name resolution for service invocation: {app-id: \"host:port\"}");
  s.add_section(
      "subscriptions",
      [&o](const config::node& n) -> status {
        auto subs = parse_subscriptions_yaml(n);
        if (!subs) return subs.error();
        o.subscriptions = std::move(*subs);
        return ok_status();
      },
      "declarative subscriptions: [{pubsubname, topic, route | routes{rules, default}, "
      "deadLetterTopic, metadata}]");
}

}  // namespace outrider::sidecar
