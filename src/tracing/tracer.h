// tracer: creates spans (ids from base/random, times from a clock seam),
// decides sampling (parent-based, ratio for new traces) and hands finished
// spans to a span_sink (the exporter).
//
//   tracer t({.service_name = "orders", .sampling = 1.0}, exporter_ptr, clock_ptr);
//   auto s = t.start_span("POST /orders", span_kind::server, parent_or_null);
//   s.set(attr::http_request_method, "POST");      // fixed keys: one byte, no strings
//   s.set("app.order.id", order_id);               // other keys: copied into the span
//   // a job firing (the jobs API) in one line:
//   auto job = t.start_job_span(name, scheduled_at, creation_context_or_null);
//   downstream.headers.set("traceparent", s.traceparent());
//   s.end();
//
// Thread-safety: a tracer is immutable after construction and may be used
// from any thread (randomness is per thread unless a source is injected, in
// which case the caller serialises use). An active_span belongs to one thread
// at a time (move it between threads, don't share it).
//
// Lifetime: spans share ownership of the tracer's state (options, sink,
// clock), so a span may end after the tracer is gone (a callback that runs
// late); its sink then decides (a stopped exporter drops and counts).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/random.h"
#include "tracing/recorded_span.h"
#include "tracing/span.h"
#include "tracing/trace_context.h"

namespace outrider::tracing {

// Where finished, sampled spans go. Neither call may block (the exporter
// queues or drops).
class span_sink {
 public:
  virtual ~span_sink() = default;
  // A span in the full model (e.g. an app's span received over OTLP).
  virtual void export_span(span&& s) = 0;
  // A span recorded by a tracer. The default converts it to the full model;
  // the exporter queues the record as is and encodes it on its own thread.
  virtual void export_recorded(recorded_span_ptr s) { export_span(s->to_span()); }
};

// Parent-based ratio sampling: a child follows its parent's sampled flag; a
// new trace is sampled when the low 64 bits of its trace id fall under
// ratio * 2^64 (deterministic per trace id, as OpenTelemetry's
// TraceIdRatioBased does), so every hop that starts from the same id agrees.
bool should_sample(double ratio, const span_context* parent, const id128& trace_id) noexcept;

struct tracer_options {
  std::string service_name = "outrider";
  double sampling = 1.0;               // ratio for new traces, 0..1
  attribute_list resource_attributes;  // besides service.name
  std::string scope_name = "outrider";
  std::string scope_version;
};

class tracer;
namespace detail {
struct tracer_state;
}  // namespace detail

// The recording half of a span: its record and the tracer's state, which is
// all it takes to add to the span and end it. What outlives the code that
// started a span when only its end remains (the hook that ends an API call's
// SERVER span, a publish's completion): two pointers, cheap to move and to
// destroy. Empty when the span is not recorded: every call then does nothing.
// Ending is explicit; a recording destroyed without end() is ended then.
class span_recording {
 public:
  span_recording() = default;
  span_recording(span_recording&&) noexcept = default;
  // Ends the span this one held, if any, and takes `other`'s.
  span_recording& operator=(span_recording&& other) noexcept;
  span_recording(const span_recording&) = delete;
  span_recording& operator=(const span_recording&) = delete;
  // Inline, so that the many moved-from spans on the request path (a span is
  // moved into a responder's hook, a publish's ticket, ...) cost nothing to destroy.
  ~span_recording() {
    if (data_) end();
  }

  // False for spans that are not sampled (setters do nothing) and for empty ones.
  bool recording() const noexcept { return data_ != nullptr; }

  // Attributes with a fixed key (recorded_span.h): no key text is stored.
  void set(attr key, std::string_view value);
  void set(attr key, const char* value) { set(key, std::string_view(value)); }
  void set(attr key, std::int64_t value);
  void set(attr key, bool value);
  void set(attr key, double value);
  // An id as its text (id128::to_string), written straight into the span.
  void set(attr key, const id128& id);
  // Any other key (copied into the span).
  void set(std::string_view key, std::string_view value);
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, std::int64_t value);
  void set(std::string_view key, bool value);
  void set(std::string_view key, double value);
  void add_link(const span_context& c, attribute_list attributes = {});
  void add_event(std::string name, attribute_list attributes = {});
  // Status ERROR with a description (OTel: description only with ERROR).
  void set_error(std::string_view message);
  void set_name(std::string_view name);
  // Ends the span now (or at `end_time`) and hands it to the sink. Idempotent.
  void end();
  void end(wall_time end_time);

 private:
  friend class tracer;
  std::shared_ptr<const detail::tracer_state> tracer_;
  std::unique_ptr<recorded_span> data_;  // null when not recording
};

// A span being recorded (or, when not sampled, only a context to propagate):
// its recording (the base: setters, end()) and its context.
class active_span : public span_recording {
 public:
  active_span() = default;
  active_span(active_span&&) noexcept = default;
  active_span& operator=(active_span&&) noexcept = default;  // ends the span it held
  active_span(const active_span&) = delete;
  active_span& operator=(const active_span&) = delete;
  ~active_span() = default;

  const span_context& context() const noexcept { return context_; }
  // The headers that continue this span's trace downstream.
  std::string traceparent() const { return format_traceparent(context_); }
  // The same written into `out`, reusing its storage (no allocation when it
  // already holds a traceparent, e.g. the one a request came with).
  void traceparent_into(std::string& out) const {
    out.resize(traceparent_size);
    write_traceparent(context_.trace_id, context_.span_id, context_.flags, out.data());
  }
  const std::string& tracestate() const noexcept { return context_.trace_state; }

  // The recording alone, for what only adds to the span and ends it; this
  // span keeps its context and records nothing more.
  span_recording take_recording() noexcept {
    return std::move(static_cast<span_recording&>(*this));
  }

 private:
  friend class tracer;
  span_context context_;
};

struct span_start {
  std::string name;
  span_kind kind = span_kind::internal;
  // The parent (remote or local); null or invalid: a new trace.
  const span_context* parent = nullptr;
  // When the span started; nullopt: now.
  std::optional<wall_time> start_time;
};

class tracer {
 public:
  // `sink` null: spans are created (contexts propagate) but nothing is
  // recorded. `rng` null: thread_random(); else it must outlive every span.
  tracer(tracer_options options, std::shared_ptr<span_sink> sink, std::shared_ptr<const clock> clk,
         random_source* rng = nullptr);

  active_span start_span(const span_start& start) const {
    return start_span(start.name, start.kind, start.parent, start.start_time);
  }
  active_span start_span(std::string_view name, span_kind kind, const span_context* parent,
                         std::optional<wall_time> start_time = std::nullopt) const;
  // The same with its fixed-key string attributes, recorded in the same call
  // (the sidecar's request path: one call per span, not one per attribute).
  active_span start_span(std::string_view name, span_kind kind, const span_context* parent,
                         std::initializer_list<string_attribute> attributes) const;
  // The same with the name given as two parts joined by a space ("POST
  // /orders", "publish orders"), written straight into the record (and not at
  // all for a span that is not recorded); `start_time` null: now.
  active_span start_span(std::string_view name_first, std::string_view name_second, span_kind kind,
                         const span_context* parent,
                         std::initializer_list<string_attribute> attributes,
                         const wall_time* start_time = nullptr) const;

  // The span of one job firing (the jobs API): CONSUMER "job <name>", a child
  // of `parent` (the context saved when the job was scheduled; null: a new
  // trace), with outrider.job.name, .scheduled_time_ms, .fired_time_ms (now),
  // .lag_ms and .attempt. Calls to the app made for the firing are its
  // children (pass its context()); end() it when the firing is done.
  active_span start_job_span(std::string_view job_name, wall_time scheduled,
                             const span_context* parent = nullptr, std::int64_t attempt = 1) const;

  const std::shared_ptr<const span_resource>& resource() const noexcept;
  const std::string& service_name() const noexcept;
  double sampling() const noexcept;
  const clock& time_source() const noexcept;

 private:
  // A new span's context into `out` (a child of `parent` when it is valid,
  // else a new trace) and, when it is recorded, its record with everything
  // but the name and attributes; null when it is not recorded.
  recorded_span* begin(active_span& out, span_kind kind, const span_context* parent,
                       const wall_time* start_time) const;

  std::shared_ptr<const detail::tracer_state> state_;
};

// A non-owning shared_ptr, for objects that outlive every span (tests).
template <class T>
std::shared_ptr<T> borrow(T& object) {
  return std::shared_ptr<T>(&object, [](T*) {});
}

std::int64_t to_unix_ns(wall_time t) noexcept;

}  // namespace outrider::tracing
