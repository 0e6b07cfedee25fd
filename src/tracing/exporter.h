// exporter: sends finished spans to a trace backend in batches, over
// OTLP/HTTP (protobuf or JSON) or Zipkin v2 JSON, from threads of its own.
//
//   exporter ex(opts, make_http_transport(), &registry);
//   ex.start();
//   tracer t(..., &ex, clock);       // spans end -> ex.export_span()
//   ex.stop();                       // flushes what is queued (bounded by flush_timeout)
//
// export_span()/export_recorded() never block: the queue is bounded (max_queue
// spans) and spans arriving when it is full are dropped and counted.
//
// A span recorded by a tracer (export_recorded) is packed on the thread that
// ends it (its fields, attributes and text, only what is used: ~300 bytes,
// recorded_span::pack) into that thread's open chunk, under a spin lock only
// that thread and the batching thread take; its record goes back to the thread's
// own cache at once, so records never cross threads. What crosses to the
// exporter's thread is whole chunks, read once in order: a chunk of
// chunk_spans() spans is handed over under the exporter's mutex (one lock per
// chunk, not per span), and is dropped and counted when the queue cannot take
// it. So at most max_queue spans wait in handed-over chunks plus, per
// recording thread, an open chunk of fewer than chunk_spans(). Opening a chunk
// wakes the batching thread when it waits for a first span. Full-model spans
// (export_span: an app's forwarded spans) are queued one by one.
//
// The batching thread ("trace-export") takes a batch when max_batch spans are
// queued or batch_delay after the first one (then it also collects every
// thread's open chunk, so a quiet thread's spans wait no longer than
// batch_delay), and encodes it into a reused body (each packed record unpacked
// into one scratch record, then written in the wire format); up to
// max_in_flight bodies are sent at once by as many sender threads
// ("trace-send"), so encoding the next batch overlaps sending the
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
  // Spans per chunk a recording thread hands over (max_batch and max_queue / 4,
  // at most 256, at least 1).
  std::size_t chunk_spans() const noexcept { return chunk_spans_; }

  // Test hook: called with each wait before a retry (the Retry-After or backoff chosen).
  void on_retry_wait_for_test(std::function<void(nanoseconds)> fn) { retry_hook_ = std::move(fn); }

 private:
  struct encoded {
    std::string body;        // reused: longer than what is sent
    std::size_t offset = 0;  // the request body: `size` bytes of `body` from `offset`
    std::size_t size = 0;
    std::size_t spans = 0;
  };
  struct thread_chunks;  // a recording thread's open chunk and spare buffers (exporter.cpp)
  // Spans of one resource recorded by one thread: packed records
  // (recorded_span::pack), and the rare records that do not pack.
  struct chunk {
    std::shared_ptr<const span_resource> resource;
    // Packed records in the first `size` bytes of `capacity` (never zero-filled),
    // allocated with packed_slack bytes more (the encoder reads past a record).
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
    std::size_t size = 0;
    std::size_t spans = 0;
    std::vector<recorded_span_ptr> records;  // events, links, text beyond the inline buffer
    thread_chunks* owner = nullptr;          // its buffer goes back there
  };
  thread_chunks& chunks_of_this_thread();
  // export_recorded before start() or after stop(): dropped and counted (out of
  // its line: the recording path's code stays on few cache lines).
  [[gnu::cold]] [[gnu::noinline]] void refuse(recorded_span_ptr s);
  // export_recorded's other cases: opening, switching or filling a chunk, a record that does not
  // pack.
  void add_recorded(thread_chunks& t, recorded_span_ptr s);
  // Queues chunks a recording thread filled (or drops and counts them);
  // `opened`: the thread opened a chunk (wake a batching thread waiting for spans).
  void hand_over(thread_chunks& t, std::span<chunk> full, bool opened);
  // The batching thread: every thread's open chunk into chunks_. Called and returns locked.
  void collect_open_chunks(std::unique_lock<std::mutex>& lock);
  // The request body of `chunks` and `spans` into `batch`.
  void encode(encoded& batch, std::span<chunk> chunks, const std::vector<span>& spans) const;
  void run();     // the batching thread: takes batches, assembles them
  void sender();  // one per request in flight
  void send(const encoded& batch);
  void count_failed(std::size_t n);
  void count_dropped(std::size_t n);
  // Waits `d` unless stopping; returns false when stopped while waiting.
  bool wait_retry(nanoseconds d);
  std::size_t queued() const noexcept { return chunked_spans_ + spans_.size(); }

  exporter_options options_;
  std::unique_ptr<export_transport> transport_;
  http::url url_;
  metrics::counter* exported_metric_ = nullptr;
  metrics::counter* dropped_metric_ = nullptr;
  metrics::counter* failed_metric_ = nullptr;
  metrics::gauge* queue_metric_ = nullptr;
  std::function<void(nanoseconds)> retry_hook_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;        // the batching thread: spans queued, stop
  std::condition_variable send_wake_;   // senders: a batch to send, stop
  std::condition_variable slot_free_;   // the batching thread: a sender finished
  std::condition_variable retry_wake_;  // senders waiting to retry: stop
  const std::uint64_t id_;              // this exporter's key in a thread's list of its chunks
  std::size_t chunk_spans_ = 1;
  std::size_t max_spares_ = 2;          // chunk buffers a thread keeps for its next chunks
  std::atomic<bool> accepting_{false};  // started and not stopping
  std::vector<std::shared_ptr<thread_chunks>> threads_;  // every thread that recorded a span
  std::deque<chunk> chunks_;                             // handed over, from tracers
  std::size_t chunked_spans_ = 0;                        // spans in chunks_
  bool open_chunks_ = false;        // a thread opened a chunk since the last collection
  bool waiting_for_spans_ = false;  // the batching thread waits for a first span
  std::deque<span> spans_;          // full model (forwarded app spans)
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
