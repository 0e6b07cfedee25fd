// statsd: the StatsD line protocol (with DogStatsD tags) turned into series of
// a metrics::registry, so an app's own metrics appear on the sidecar's
// Prometheus endpoint.
//
//   metrics::statsd_sink sink(registry, {.prefix = "app_"});
//   sink.ingest("orders.placed:1|c|#store:berlin\nqueue.depth:42|g");
//
// A packet holds lines `name:value|type[|@rate][|#tag:value,tag2]`. Types:
// `c` counter (value divided by the sample rate, rounded), `g` gauge (a
// leading + or - adjusts the current value), `ms` timer (milliseconds,
// exposed as a histogram in seconds), `h` and `d` histogram/distribution
// (exposed as a histogram with the value's own unit). Names become
// `<prefix><name>` with every character outside [a-zA-Z0-9_:] replaced by `_`
// (and `_total` appended to counters); tag keys become label names the same
// way. The label set of a metric is fixed by its first line; later lines with
// other tag keys fill missing labels with "" and ignore unknown tags.
//
// Bounded: at most `max_metrics` metric names and `max_series_per_metric`
// label combinations each; beyond them lines are dropped and counted
// (`outrider_statsd_dropped_total{reason}`), as are malformed lines, sets
// (`s`, not supported) and a name reused with another type.
//
// Thread-safety: ingest() may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/registry.h"

namespace outrider::metrics {

enum class statsd_type { counter, gauge, timer, histogram };

struct statsd_line {
  std::string name;
  double value = 0;
  bool relative = false;  // gauge "+3" / "-3"
  statsd_type type = statsd_type::counter;
  double sample_rate = 1.0;
  std::vector<std::pair<std::string, std::string>> tags;  // key, value ("" when absent)
};

// Parses one line (no newline). Returns false for a malformed line; `why`
// then holds the reason ("malformed", "unsupported_type").
bool parse_statsd_line(std::string_view line, statsd_line& out, std::string& why);

struct statsd_options {
  std::string prefix = "app_";
  std::size_t max_metrics = 200;
  std::size_t max_series_per_metric = 100;
};

class statsd_sink {
 public:
  // `reg` must outlive the sink.
  explicit statsd_sink(registry& reg, statsd_options opts = {});
  statsd_sink(const statsd_sink&) = delete;
  statsd_sink& operator=(const statsd_sink&) = delete;

  // Applies every line of `packet` (lines separated by '\n'; empty lines skipped).
  void ingest(std::string_view packet);

  std::uint64_t lines_accepted() const { return accepted_->value(); }
  std::uint64_t lines_dropped() const;

 private:
  struct metric {
    statsd_type type;
    std::vector<std::string> label_names;  // sanitized, sorted
    std::vector<std::string> tag_keys;     // the raw keys they came from, same order
    void* family = nullptr;                // family<counter|gauge|histogram>
  };
  void apply(const statsd_line& line);
  metric* find_or_declare(const statsd_line& line);
  void drop(std::string_view reason);

  registry& reg_;
  statsd_options opts_;
  std::mutex mutex_;
  std::map<std::string, metric, std::less<>> metrics_;  // by sanitized exposed name
  family<counter>* dropped_;
  counter* accepted_;
};

// `text` with every character outside [a-zA-Z0-9_:] replaced by '_' and a
// leading digit prefixed by '_' (a valid Prometheus metric name when non-empty).
std::string sanitize_metric_name(std::string_view text);

}  // namespace outrider::metrics
