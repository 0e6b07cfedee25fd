#include "analysis/routes.h"

#include <charconv>

#include "analysis/analysis.h"
#include "analysis/report_json.h"
#include "tracing/span_store.h"

namespace outrider::analysis {
namespace {

constexpr int http_ok = 200;

// A positive integer query parameter, or `fallback` when absent or empty.
result<std::int64_t> positive_param(const http::request& req, std::string_view name,
                                    std::int64_t fallback) {
  auto v = req.query_param(name);
  if (!v || v->empty()) return fallback;
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size()) {
    return error(errc::invalid_argument, std::string(name) + " is not an integer: " + *v);
  }
  if (out <= 0) return error(errc::invalid_argument, std::string(name) + " must be positive");
  return out;
}

result<analysis_result> run(const http::request& req, const tracing::span_store& store,
                            const route_options& opts) {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(opts.now().time_since_epoch()).count();
  auto end = positive_param(req, "endTs", now_ms);
  if (!end) return std::move(end).error();
  auto lookback = positive_param(req, "lookback", opts.default_lookback_ms);
  if (!lookback) return std::move(lookback).error();
  return analyze_store(store, *end, *lookback, opts.max_traces);
}

}  // namespace

void add_routes(http::router& r, const tracing::span_store& store, route_options opts) {
  r.add_sync("GET", "/api/outrider/v1/graph", [&store, opts](const http::request& req) {
    auto a = run(req, store, opts);
    if (!a) return http::response::from_error(a.error());
    return http::response::json(http_ok, to_json(a->graph));
  });
  r.add_sync("GET", "/api/outrider/v1/analysis", [&store, opts](const http::request& req) {
    auto a = run(req, store, opts);
    if (!a) return http::response::from_error(a.error());
    return http::response::json(http_ok, to_json(a->coupling));
  });
}

}  // namespace outrider::analysis
