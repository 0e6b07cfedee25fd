// exporter: sends finished spans to a trace backend in batches, over
// OTLP/HTTP (protobuf or JSON) or Zipkin v2 JSON, from threads of its own.
//
//   exporter ex(opts, make_http_transport(), &registry);
//   ex.start();
//   tracer t(..., &ex, clock);       // spans end -> ex.export_span()
//   ex.stop();                       // flushes what is queued (bounded by flush_timeout)
//
// export_span()/export_recorded() never block: the queue is bounded (max_queue
// spans) and a span arriving when it is full is dropped and counted. Queueing a
// span takes a mutex and appends a pointer; it wakes the batching thread only
// when it is the first span of a batch or fills one (no timer and no post per
// span). The batching thread ("trace-export") takes a batch when max_batch spans
// are queued or batch_delay after the first one and encodes it into a reused
// body (spans recorded by a tracer straight to the wire format, recorded_span.h,
// then recycled); up to max_in_flight encoded batches are sent at once by as many
// sender threads ("trace-send"), so encoding the next batch overlaps sending the
// last. A sender runs the HTTP exchange itself (the transport's I/O runs on the
// calling thread, over a keep-alive connection per sender) and the body is read
// in place, never copied: a batch costs a few wake-ups and no fresh memory. A
// response 429, 502, 503 or 504 (or a failure to connect) is retried with
// exponential backoff, or after the server's Retry-After (seconds or an HTTP
// date) when it gives one, up to max_attempts; other 4xx/5xx fail the batch.
//
// Metrics: outrider_tracing_exporter_spans_total{outcome="exported"|"dropped"|"failed"}
// (dropped: queue full; failed: the batch was given up), and
// outrider_tracing_exporter_queue_size.
//
// Threading: export_span()/export_recorded() from any thread; start()/stop()
// from the owner. The transport's post() is called from the sender threads
// (concurrently when max_in_flight > 1).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/client.h"
#include "http/message.h"
#include "metrics/registry.h"
#include "tracing/tracer.h"

namespace outrider::tracing {

enum class export_protocol : std::uint8_t { otlp_protobuf, otlp_json, zipkin_json };

// "otlp" (protobuf), "otlp-json", "zipkin". Errors: config_invalid.
result<export_protocol> parse_export_protocol(std::string_view text);
// The protocol a URL implies: a path ending "/api/v2/spans" means Zipkin,
// anything else OTLP protobuf.
export_protocol guess_export_protocol(std::string_view url);
std::string_view content_type_of(export_protocol p) noexcept;
// Encodes a batch in `p`'s wire format.
std::string encode_batch(export_protocol p, const std::vector<span>& spans);
// The same for spans recorded by a tracer plus spans in the full model (either may be empty).
std::string encode_batch(export_protocol p, std::span<const recorded_span_ptr> recorded,
                         const std::vector<span>& spans);

// How the exporter reaches the backend: one blocking POST. Called on the
// exporter's sender threads (concurrently when max_in_flight > 1). `body` stays
// valid and unchanged until post() returns.
class export_transport {
 public:
  virtual ~export_transport() = default;
  virtual result<http::response> post(const http::url& to, std::string_view body,
                                      std::string_view content_type, nanoseconds timeout) = 0;
};

// The real transport: an http::client per concurrent caller whose I/O runs on
// the calling thread during post(); the body is sent from the caller's buffer.
std::unique_ptr<export_transport> make_http_transport();

struct exporter_options {
  std::string endpoint;  // full URL, e.g. http://127.0.0.1:4318/v1/traces
  export_protocol protocol = export_protocol::otlp_protobuf;
  std::size_t max_queue = 8192;   // spans
  std::size_t max_batch = 1024;   // spans per request
  std::size_t max_in_flight = 2;  // requests at once (sender threads)
  // After a batch's first span: 1 s (OpenTelemetry's BatchSpanProcessor waits 5 s) keeps a
  // sidecar at 1000 publishes/s to ~2 requests a second; each costs wake-ups and a few
  // hundred µs of HTTP work whatever its size.
  nanoseconds batch_delay = std::chrono::seconds(1);
  nanoseconds request_timeout = std::chrono::seconds(10);
  std::uint32_t max_attempts = 5;  // per batch, the first included
  nanoseconds initial_backoff = std::chrono::milliseconds(500);
  nanoseconds max_backoff = std::chrono::seconds(30);
  nanoseconds flush_timeout = std::chrono::seconds(5);  // stop() waits at most this long
};

class exporter final : public span_sink {
 public:
  // `metrics` may be null. Errors surface from start() (bad endpoint).
  exporter(exporter_options options, std::unique_ptr<export_transport> transport,
           metrics::registry* metrics);
  ~exporter() override;  // stop()
  exporter(const exporter&) = delete;
  exporter& operator=(const exporter&) = delete;

  // Errors: config_invalid (the endpoint is not an http(s) URL).
  status start();
  // Sends what is queued (for at most flush_timeout), then stops the worker. Idempotent.
  void stop();

  void export_span(span&& s) override;                 // never blocks; drops when the queue is full
  void export_recorded(recorded_span_ptr s) override;  // the same, encoded on export

  struct counts {
    std::uint64_t exported = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failed = 0;
    std::uint64_t requests = 0;  // POSTs made, retries included
  };
  counts stats() const;

  // Test hook: called with each wait before a retry (the Retry-After or backoff chosen).
  void on_retry_wait_for_test(std::function<void(nanoseconds)> fn) { retry_hook_ = std::move(fn); }

 private:
  struct encoded {
    std::string body;        // reused: longer than what is sent
    std::size_t offset = 0;  // the request body: `size` bytes of `body` from `offset`
    std::size_t size = 0;
    std::size_t spans = 0;
  };
  void run();     // the batching thread: takes batches, encodes them
  void sender();  // one per request in flight
  void send(const encoded& batch);
  void count_failed(std::size_t n);
  // Waits `d` unless stopping; returns false when stopped while waiting.
  bool wait_retry(nanoseconds d);
  std::size_t queued() const noexcept { return recorded_.size() + spans_.size(); }
  // Appends to `queue` (spans_ or recorded_) unless stopped or full, then a drop is counted.
  template <class Queue, class Item>
  void enqueue(Queue& queue, Item&& item);

  exporter_options options_;
  std::unique_ptr<export_transport> transport_;
  http::url url_;
  metrics::counter* exported_metric_ = nullptr;
  metrics::counter* dropped_metric_ = nullptr;
  metrics::counter* failed_metric_ = nullptr;
  metrics::gauge* queue_metric_ = nullptr;
  std::function<void(nanoseconds)> retry_hook_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;             // the batching thread: spans queued, stop
  std::condition_variable send_wake_;        // senders: a batch to send, stop
  std::condition_variable slot_free_;        // the batching thread: a sender finished
  std::condition_variable retry_wake_;       // senders waiting to retry: stop
  std::vector<recorded_span_ptr> recorded_;  // from tracers
  std::deque<span> spans_;                   // full model (forwarded app spans)
  std::deque<encoded> to_send_;
  std::vector<std::string> spare_bodies_;  // sent bodies, reused (capacity kept)
  std::size_t in_flight_ = 0;              // batches in to_send_ or being sent
  bool batching_done_ = false;
  bool stopping_ = false;
  bool started_ = false;
  mono_time stop_deadline_{};
  std::thread worker_;
  std::vector<std::thread> senders_;
  std::atomic<std::uint64_t> exported_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> requests_{0};
};

// Parses Retry-After: delta-seconds or an HTTP-date (IMF-fixdate), relative to
// `now`. nullopt when absent or malformed.
std::optional<nanoseconds> parse_retry_after(std::string_view value, wall_time now);

}  // namespace outrider::tracing
