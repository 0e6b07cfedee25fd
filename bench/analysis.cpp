// bench_analysis: how long the coupling analysis takes over a large window.
//
// Writes a span store of synthetic traces (default 10,000 traces of 20 spans:
// a 4-deep blocking chain, a 3-call fan-out, a message and its consumer's own
// call, as docs/analysis.md's model sees them) into a temporary directory, then
// times, best and median of --runs: reading the window from the store and
// analysing it (what GET /api/outrider/v1/analysis does), the analysis alone
// over traces in memory, and the JSON body. Not part of CTest; no peers.
//
//   bench_analysis [--traces 10000] [--runs 5] [--dir /tmp/x]
#include "analysis/analysis.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/report_json.h"
#include "io/file_system.h"
#include "tracing/span_store.h"

namespace {

using outrider::tracing::span;
using outrider::tracing::span_kind;
using clock_type = std::chrono::steady_clock;

constexpr std::int64_t ns_per_ms = 1'000'000;

// One trace of 20 spans starting at `start_ms`; `variant` changes services and timings.
std::vector<span> make_trace(std::uint64_t n, std::int64_t start_ms) {
  std::vector<span> out;
  const outrider::id128 trace{0x5eed, n + 1};
  std::uint64_t next = 1;
  auto add = [&](std::uint64_t parent, std::string service, std::string name, span_kind kind,
                 std::int64_t from_ms, std::int64_t to_ms, std::string remote = {}) {
    span s;
    s.trace_id = trace;
    s.span_id = next++;
    s.parent_id = parent;
    s.local_endpoint.service_name = std::move(service);
    s.remote_endpoint.service_name = std::move(remote);
    s.name = std::move(name);
    s.kind = kind;
    s.start_ns = (start_ms + from_ms) * ns_per_ms;
    s.end_ns = (start_ms + to_ms) * ns_per_ms;
    if (kind == span_kind::client) {
      s.attributes.push_back({"http.request.method", outrider::tracing::attribute_value::of(
                                                         s.name.substr(0, s.name.find(' ')))});
    }
    if (kind == span_kind::server) {
      s.attributes.push_back({"http.response.status_code",
                              outrider::tracing::attribute_value::of_int(n % 97 == 0 ? 503 : 200)});
    }
    out.push_back(std::move(s));
    return out.back().span_id;
  };
  auto call = [&](std::uint64_t parent, const std::string& from, const std::string& to,
                  const std::string& name, std::int64_t a, std::int64_t b) {
    const auto c = add(parent, from, name, span_kind::client, a, b, to);
    return add(c, to, name, span_kind::server, a + 1, b - 1);
  };
  const std::string entry = n % 5 == 0 ? "bff" : "checkout";
  const std::int64_t jitter = static_cast<std::int64_t>(n % 50);
  const auto root = add(0, entry, entry == "bff" ? "GET /page" : "POST /checkout",
                        span_kind::server, 0, 600 + jitter);
  add(root, entry, "validate", span_kind::internal, 1, 5);
  // A 4-deep chain: 8 spans.
  auto a = call(root, entry, "orders", "POST /orders", 10, 300 + jitter);
  a = call(a, "orders", "inventory", "POST /reserve", 20, 280);
  a = call(a, "inventory", "pricing", "GET /price", 30, 260);
  call(a, "pricing", "tax", "GET /rate", 40, 240);
  // Fan-out of three concurrent reads: 6 spans.
  call(root, entry, "customers", "GET /customer", 310, 400);
  call(root, entry, "reviews", "GET /reviews", 310, 420);
  call(root, entry, "loyalty", "GET /points", 310, 380 + jitter);
  // A message and what its consumer does: 4 spans.
  const auto send = add(root, entry, "orders.placed send", span_kind::producer, 590, 591, "broker");
  const auto consume =
      add(send, "shipping", "orders.placed process", span_kind::consumer, 2000, 2100);
  call(consume, "shipping", "carrier", "POST /labels", 2010, 2090);
  return out;
}

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

struct timing {
  std::vector<double> runs;
  double best() const { return *std::min_element(runs.begin(), runs.end()); }
  double median() const {
    auto v = runs;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t traces = 10000;
  int runs = 5;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--traces")
      traces = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--runs")
      runs = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--dir")
      dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: bench_analysis [--traces N] [--runs N] [--dir DIR]\n");
      return 2;
    }
  }
  const bool own_dir = dir.empty();
  if (own_dir)
    dir =
        (std::filesystem::temp_directory_path() / ("bench-analysis-" + std::to_string(::getpid())))
            .string();

  outrider::tracing::span_store_options so;
  so.dir = dir;
  so.max_age = std::chrono::nanoseconds::zero();
  auto store = outrider::tracing::span_store::open(outrider::io::posix_file_system(), so);
  if (!store) {
    std::fprintf(stderr, "bench_analysis: %s\n", store.error().message.c_str());
    return 1;
  }
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::int64_t lookback_ms = 3600LL * 1000;
  std::vector<std::vector<span>> memory;
  std::uint64_t spans = 0;
  for (std::uint64_t n = 0; n < traces; ++n) {
    // Spread over the last 50 minutes.
    auto t = make_trace(n, now_ms - 3'000'000 + static_cast<std::int64_t>(n * 3'000'000 / traces));
    spans += t.size();
    if (auto s = (*store)->append(t, std::chrono::system_clock::now()); !s) {
      std::fprintf(stderr, "bench_analysis: append: %s\n", s.error().message.c_str());
      return 1;
    }
    memory.push_back(std::move(t));
  }
  if (auto s = (*store)->sync(); !s) return 1;

  timing store_run, memory_run, json_run;
  std::size_t findings = 0;
  for (int r = 0; r < runs; ++r) {
    auto t = clock_type::now();
    auto a = outrider::analysis::analyze_store(**store, now_ms + 1000, lookback_ms, 50000);
    store_run.runs.push_back(ms_since(t));
    if (!a || a->coupling.traces != traces) {
      std::fprintf(stderr, "bench_analysis: analysed %llu of %llu traces\n",
                   a ? static_cast<unsigned long long>(a->coupling.traces) : 0ULL,
                   static_cast<unsigned long long>(traces));
      return 1;
    }
    findings = a->coupling.findings.size();
    t = clock_type::now();
    auto body = outrider::analysis::to_json(a->coupling);
    json_run.runs.push_back(ms_since(t));
    t = clock_type::now();
    auto m = outrider::analysis::analyze(memory, {now_ms - lookback_ms, now_ms});
    memory_run.runs.push_back(ms_since(t));
  }
  store->reset();
  if (own_dir) std::filesystem::remove_all(dir);

  std::printf("bench_analysis: %llu traces, %llu spans, %zu findings, %d runs\n",
              static_cast<unsigned long long>(traces), static_cast<unsigned long long>(spans),
              findings, runs);
  std::printf("  read window from store + analyse: best %.0f ms, median %.0f ms\n",
              store_run.best(), store_run.median());
  std::printf("  analyse only (traces in memory):   best %.0f ms, median %.0f ms\n",
              memory_run.best(), memory_run.median());
  std::printf("  JSON body:                         best %.1f ms, median %.1f ms\n",
              json_run.best(), json_run.median());
  std::printf(
      "{\"generator\":\"bench_analysis\",\"traces\":%llu,\"spans\":%llu,\"storeAnalyseMsMedian\":%."
      "1f,"
      "\"analyseMsMedian\":%.1f,\"jsonMsMedian\":%.2f}\n",
      static_cast<unsigned long long>(traces), static_cast<unsigned long long>(spans),
      store_run.median(), memory_run.median(), json_run.median());
  return 0;
}
