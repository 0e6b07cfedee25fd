// Shared driver for the bench_<peer> load generators: argument parsing, fixed-rate pacing,
// latency samples with percentiles, peak-RSS sampling of a server process, the payload layout and
// the JSON-line report. Every generator prints exactly one JSON object on one stdout line; errors
// go to stderr and give a non-zero exit status. bench/run parses the line (docs/benchmarks.md
// documents the CLI and the fields).
//
// Threading: arg_parser, latency_samples and json_line are single-threaded values; rss_sampler
// owns one background thread; rate_pacer is used by the one producer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

// Monotonic nanoseconds (same clock in every thread of one process).
std::int64_t now_ns();
// Wall-clock microseconds since the Unix epoch (what due times and Redis scores use).
std::int64_t wall_us();

// "--name value" pairs. Getters record which flags were read; finish() fails on unknown flags so a
// typo never silently runs the default workload.
class arg_parser {
 public:
  arg_parser(int argc, char** argv);
  std::string get(const std::string& name, const std::string& fallback);
  std::int64_t get_int(const std::string& name, std::int64_t fallback);
  double get_double(const std::string& name, double fallback);
  // Records a validation problem reported by finish().
  void add_problem(std::string problem) { problems_.push_back(std::move(problem)); }
  // Prints the problems to stderr and returns false if any flag was malformed or unknown.
  bool finish();

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::vector<std::string> problems_;
};

// Every latency sample of a run, in nanoseconds; percentiles by sorting (exact, not bucketed).
class latency_samples {
 public:
  void reserve(std::size_t count) { samples_.reserve(count); }
  void add(std::int64_t nanoseconds) { samples_.push_back(nanoseconds); }
  std::size_t size() const { return samples_.size(); }
  // JSON object {"p50":..,"p90":..,"p99":..,"p999":..,"max":..} in milliseconds; sorts in place.
  std::string percentiles_json();

 private:
  std::vector<std::int64_t> samples_;
};

// Sleeps the caller until the i-th send time of a fixed-rate schedule and returns that intended
// time: latency measured from it includes the producer's own queueing (no coordinated omission).
class rate_pacer {
 public:
  explicit rate_pacer(double messages_per_second);
  std::int64_t wait_for(std::uint64_t index);

 private:
  double interval_ns_;
  std::int64_t start_ns_;
};

// Samples VmRSS of process `pid` every few milliseconds in its own thread and keeps the peak;
// pid <= 0 disables it (peak() then returns 0).
class rss_sampler {
 public:
  explicit rss_sampler(long pid);
  ~rss_sampler();
  rss_sampler(const rss_sampler&) = delete;
  rss_sampler& operator=(const rss_sampler&) = delete;
  std::int64_t peak_bytes() const { return peak_.load(); }

 private:
  long pid_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> peak_{0};
  std::thread thread_;
};
std::int64_t read_rss_bytes(long pid);

// Message layout: the first header_size bytes carry three little-endian int64 values
// (sequence, send time in now_ns(), due time in wall_us()), the rest is filler up to `size`.
inline constexpr std::size_t payload_header_size = 24;
struct payload_header {
  std::int64_t sequence = 0;
  std::int64_t sent_ns = 0;
  std::int64_t due_us = 0;
};
void write_payload(std::string& buffer, std::size_t size, const payload_header& header);
// Returns false if the buffer is too short to hold a header.
bool read_payload(std::string_view buffer, payload_header& header);

// Delay of message `sequence` in delayed mode: a deterministic pseudo-random spread, uniform over
// [0, window_s] seconds, so that late-due messages are scheduled before early-due ones (the case
// that exposes head-of-line blocking) and every run schedules the same pattern.
std::int64_t delay_offset_us(std::int64_t sequence, double window_s);

// Builds one flat JSON object; values given as raw JSON (numbers, nested objects) or strings.
class json_line {
 public:
  json_line& str(std::string_view key, std::string_view value);
  json_line& num(std::string_view key, double value);
  json_line& integer(std::string_view key, std::int64_t value);
  json_line& raw(std::string_view key, std::string_view json);
  // Prints the object and a newline to stdout and flushes.
  void print() const;

 private:
  std::string body_;
  void key(std::string_view name);
};

// The options every generator shares (names and defaults in docs/benchmarks.md).
struct common_options {
  std::string mode;           // throughput | latency | delayed
  std::string host;           // server address, loopback only
  int port = 0;               // server port
  std::int64_t messages = 0;  // messages to send (throughput, delayed)
  std::int64_t size = 0;      // message size in bytes
  std::int64_t inflight = 0;  // maximum unconfirmed publishes
  std::int64_t prefetch = 0;  // maximum unacknowledged deliveries per consumer
  double rate = 0;            // messages per second (latency mode)
  double duration_s = 0;      // seconds of fixed-rate load (latency mode)
  double window_s = 0;        // due times spread over this many seconds (delayed mode)
  // Delayed mode, large (many pending): only every near_every-th message is due within window_s;
  // the others are due after it, spread over far_window_s, and do not fire during the run.
  std::int64_t near_every = 1;
  double far_window_s = 0;
  // Delayed mode, burst (with near_every / far_window_s): the far messages are sent first, then
  // the near ones, which come due at near_rate per second from near_lead_s after the first near
  // one is sent (firing lag while a given rate comes due, with everything else pending).
  double near_rate = 0;
  double near_lead_s = 10;
  long server_pid = 0;   // process whose peak RSS is reported, 0 for none
  double timeout_s = 0;  // a run that has not finished after this many seconds fails
  std::string label;     // system label copied into the report
};
common_options parse_common(arg_parser& args, std::string_view default_label);

// Delayed mode: due time of message `sequence` relative to its send, in microseconds (see
// near_every / far_window_s), and how many of the run's messages come due within window_s.
std::int64_t due_offset_us(const common_options& options, std::int64_t sequence);
std::int64_t near_messages(const common_options& options);

// Delayed mode: the due time (wall_us()) of each message as the producer sends it, in sequence
// order, from one thread. Without near_rate it is the send time plus due_offset_us().
class due_schedule {
 public:
  explicit due_schedule(const common_options& options) : options_(options) {}
  std::int64_t due_us(std::int64_t sequence);

 private:
  const common_options& options_;
  std::int64_t first_near_us_ = -1;
};

// Starts the report with the fields every generator emits.
json_line report_header(const common_options& options, std::string_view generator);

}  // namespace bench
