// The analysis endpoints of `outrider collector`, on its query port:
//   GET /api/outrider/v1/graph?endTs=<ms>&lookback=<ms>     the service graph
//   GET /api/outrider/v1/analysis?endTs=<ms>&lookback=<ms>  the coupling report
// endTs defaults to now, lookback to `default_lookback_ms`. Bad parameters
// answer 400 {errorCode, message}. Bodies: report_json.h, docs/analysis.md.
// One analysis serves both routes for a few seconds (route_options::cache_ttl_ms).
//
// Threading: handlers run on the HTTP thread that received the request and
// read the store under its shared lock (a 10k-trace window takes about a
// second; ingest waits for the index meanwhile).
#pragma once

#include <cstdint>
#include <functional>

#include "base/clock.h"
#include "http/router.h"

namespace outrider::tracing {
class span_store;
}  // namespace outrider::tracing

namespace outrider::analysis {

struct route_options {
  std::int64_t default_lookback_ms = 3600LL * 1000;  // one hour
  std::size_t max_traces = 50000;                    // newest traces analysed per request
  // An answer computed less than this long ago, for the same lookback and an end
  // at most this far from the requested one, is served again (0: never). The
  // report's "window" says which window was analysed.
  std::int64_t cache_ttl_ms = 5000;
  std::function<wall_time()> now = [] { return std::chrono::system_clock::now(); };
};

// Adds both routes to `r`. `store` must outlive the router.
void add_routes(http::router& r, const tracing::span_store& store, route_options opts = {});

}  // namespace outrider::analysis
