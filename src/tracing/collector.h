// collector: the HTTP face of `outrider collector`.
//
//  - OTLP/HTTP receiver: POST /v1/traces (protobuf or JSON by Content-Type,
//    gzip), answering 200 with partial success for rejected spans, 400 for bad
//    data, 413 over the size limit, 415 for other media types, 429/503 with
//    Retry-After under overload. Error bodies are google.rpc.Status (protobuf
//    or JSON, matching the request), as OTLP/HTTP requires.
//  - Zipkin: POST /api/v2/spans (JSON or proto3, gzip; 202) and the Zipkin v2
//    query API (services, spans, remoteServices, traces, trace/{id},
//    traceMany, dependencies, autocompleteKeys/Values, config.json) with
//    Zipkin's parameters, defaults, status codes and empty-list shapes.
//  - GET /api/outrider/v1/trace/{id}: the full span model (links, events,
//    status, resource) for Outrider's UI; GET /metrics; GET /healthz.
//
// Ingest path: handlers decode on the connection's thread, then hand the spans
// to a bounded queue (at most `max_queued_spans`; beyond it requests get 429
// with Retry-After). One writer thread appends whole queue contents to the
// store and syncs once (group commit); each request is answered after its
// spans are durable (503 with Retry-After if the store failed).
//
// Threading: handlers run on any thread; start()/stop() on the owner's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/router.h"
#include "metrics/registry.h"
#include "tracing/span.h"
#include "tracing/span_store.h"

namespace outrider::tracing {

struct collector_options {
  // Largest request body after gzip decompression (413 beyond).
  std::size_t max_decompressed_bytes = std::size_t{32} << 20;
  // Spans waiting for the writer at most; more are refused with 429.
  std::size_t max_queued_spans = 200000;
  // Retry-After seconds on 429/503.
  int retry_after_seconds = 1;
  // Zipkin's QUERY_LOOKBACK: lookback when the query gives none (ms).
  std::int64_t default_lookback_ms = 24LL * 3600 * 1000;
  // Zipkin UI settings served in config.json.
  std::int64_t ui_default_lookback_ms = 15LL * 60 * 1000;
  std::size_t ui_query_limit = 10;
  // How often the writer enforces the store's retention.
  nanoseconds retention_interval = std::chrono::minutes(1);
  // Wall clock (tests pass a fixed time).
  std::function<wall_time()> now = [] { return std::chrono::system_clock::now(); };
};

class collector {
 public:
  // `store` and `registry` (may be null) must outlive the collector.
  collector(span_store& store, metrics::registry* registry, collector_options opts = {});
  ~collector();  // stop()
  collector(const collector&) = delete;
  collector& operator=(const collector&) = delete;

  // Starts the writer thread. REQUIRES: not started.
  void start();
  // Stores what is queued, answers every waiting request, stops the writer. Idempotent.
  void stop();

  // POST /v1/traces.
  void add_otlp_routes(http::router& r);
  // POST /api/v2/spans, the Zipkin query API, the native trace endpoint, /metrics, /healthz.
  void add_zipkin_routes(http::router& r);

  // Queues decoded spans; `done` is called once they are durable (or failed).
  // Errors (at once, `done` not called): resource_exhausted when the queue is
  // full, shutting_down after stop().
  status submit(std::vector<span> spans, std::function<void(status)> done);

  std::size_t queued_spans() const;

 private:
  struct batch {
    std::vector<span> spans;
    std::function<void(status)> done;
  };
  struct instruments;

  void run_writer();
  void handle_otlp(http::request&& req, http::responder r);
  void handle_zipkin_post(http::request&& req, http::responder r);

  span_store& store_;
  collector_options opts_;
  std::unique_ptr<instruments> metrics_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<batch> queue_;
  std::size_t queued_spans_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::thread writer_;
};

}  // namespace outrider::tracing
