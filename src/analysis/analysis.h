// analysis: the distributed-monolith report over stored traces.
//
// Feed an `analyzer` the traces of a time window (each trace: all its spans,
// in any order; partial traces welcome), then finish() it to get
//  - the service graph: services and the edges between them, each edge sync
//    (HTTP/RPC/invoke: CLIENT -> SERVER) or async (messaging: PRODUCER ->
//    CONSUMER), with calls, errors and latency percentiles;
//  - the coupling report: per entry point (the service and operation that
//    starts a blocking region: a trace's root, a message consumer, or the top
//    of a partial trace) the depth of chains of blocking synchronous calls,
//    blocking fan-out, the share of its latency spent waiting on synchronous
//    calls, the availability its synchronous dependencies imply and a score;
//    cycles in the synchronous call graph; and findings in plain words, ranked.
// Every metric is defined in docs/analysis.md; this code follows that text.
//
// Threading: an analyzer is used by one thread. Pure computation: no clock,
// no I/O (load_window reads a span store).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "tracing/span.h"

namespace outrider::tracing {
class span_store;
}  // namespace outrider::tracing

namespace outrider::analysis {

// [start_ms, end_ms] in Unix epoch milliseconds; a trace belongs to the window
// when its timestamp (root span's start, else its earliest span's) is inside.
struct time_window {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  bool operator==(const time_window&) const = default;
};

enum class edge_kind : std::uint8_t { sync, async };
std::string_view to_string(edge_kind k) noexcept;  // "sync", "async"

struct graph_node {
  std::string service;
  std::uint64_t spans = 0;   // spans whose local service this is
  std::uint64_t errors = 0;  // ... of which failed
  bool operator==(const graph_node&) const = default;
};

struct graph_edge {
  std::string from;
  std::string to;
  edge_kind kind = edge_kind::sync;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  // sync: the call's duration; async: send -> start of processing. 0 when no sample.
  double p50_ms = 0;
  double p99_ms = 0;
  bool operator==(const graph_edge&) const = default;
};

struct service_graph {
  std::vector<graph_node> nodes;  // by service name
  std::vector<graph_edge> edges;  // by (from, to, kind)
  bool operator==(const service_graph&) const = default;
};

struct entry_point {
  std::string service;
  std::string operation;
  std::uint64_t traces = 0;  // occurrences of this entry point (blocking regions it starts)
  int score = 0;             // 0..100, higher = more temporally coupled
  std::uint32_t depth_max = 0;
  std::uint32_t depth_p50 = 0;
  std::uint32_t fan_out_max = 0;
  std::uint32_t fan_out_p50 = 0;
  double sync_share = 0;    // 0..1
  double availability = 1;  // 0..1
  double p50_ms = 0;        // the entry span's own duration
  double p99_ms = 0;
  std::vector<std::string> blocking_services;  // services it waits on (directly or down a chain)
  std::vector<std::string> example_trace_ids;  // traces with its deepest chain first
  bool operator==(const entry_point&) const = default;
};

enum class severity : std::uint8_t { low, medium, high };
std::string_view to_string(severity s) noexcept;  // "low", "medium", "high"

struct finding {
  severity level = severity::low;
  std::string kind;  // blocking_chain, blocking_fan_out, sync_wait, availability, sync_cycle,
                     // not_awaited, command_call
  std::string text;  // one sentence in plain words
  std::string entry_point;  // "service: operation", or "" for findings about the whole graph
  std::vector<std::string> services;
  std::vector<std::pair<std::string, double>> metrics;  // name -> value, in a stable order
  std::vector<std::string> example_trace_ids;
  bool operator==(const finding&) const = default;
};

struct report {
  time_window window;
  std::uint64_t traces = 0;               // traces analysed
  bool truncated = false;                 // more traces were in the window than were analysed
  std::vector<entry_point> entry_points;  // by score, then traces, then name
  std::vector<finding> findings;          // ranked: severity, impact, text
  std::vector<std::vector<std::string>> cycles;  // each in call order, smallest name first
  bool operator==(const report&) const = default;
};

struct analysis_result {
  service_graph graph;
  report coupling;
};

struct analyzer_options {
  // A call counts as not awaited when it ends more than this after the span of
  // the request its caller was answering (tolerates timestamp rounding).
  std::int64_t not_awaited_slack_ns = 1'000'000;
  // Example trace ids kept per entry point and per finding.
  std::size_t max_examples = 3;
};

class analyzer {
 public:
  explicit analyzer(analyzer_options opts = {});
  ~analyzer();
  analyzer(analyzer&&) noexcept;
  analyzer& operator=(analyzer&&) noexcept;

  // Adds one trace (every stored span of one trace id; duplicates are ignored).
  void add_trace(std::span<const tracing::span> spans);
  // Computes the graph and the report. The analyzer is spent afterwards.
  analysis_result finish(time_window window, bool truncated = false);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// Convenience: analyses `traces`.
analysis_result analyze(const std::vector<std::vector<tracing::span>>& traces, time_window window,
                        analyzer_options opts = {});

// Reads the traces of [end_ms - lookback_ms, end_ms] from `store` (at most
// `max_traces`, newest first; `truncated` is set when there were more) and
// analyses them. Errors: as span_store::find_traces; invalid_argument for a
// non-positive end or lookback.
result<analysis_result> analyze_store(const tracing::span_store& store, std::int64_t end_ms,
                                      std::int64_t lookback_ms, std::size_t max_traces,
                                      analyzer_options opts = {});

}  // namespace outrider::analysis
