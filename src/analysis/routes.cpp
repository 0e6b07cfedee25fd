#include "analysis/routes.h"

#include <charconv>
#include <cstdlib>
#include <memory>
#include <mutex>

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

struct bodies {
  std::string graph;
  std::string report;
};

// The last answer, shared by both routes: the UI asks for the graph and the
// report of the same window together, and polls.
class answer_cache {
 public:
  answer_cache(const tracing::span_store& store, route_options opts)
      : store_(store), opts_(std::move(opts)) {}

  result<std::shared_ptr<const bodies>> get(const http::request& req) {
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(opts_.now().time_since_epoch())
            .count();
    auto end = positive_param(req, "endTs", now_ms);
    if (!end) return std::move(end).error();
    auto lookback = positive_param(req, "lookback", opts_.default_lookback_ms);
    if (!lookback) return std::move(lookback).error();
    const std::int64_t ttl = opts_.cache_ttl_ms;
    {
      std::lock_guard lock(mutex_);
      if (last_ && ttl > 0 && lookback_ == *lookback && now_ms - computed_ms_ < ttl &&
          now_ms >= computed_ms_ && std::abs(end_ - *end) <= ttl) {
        return last_;
      }
    }
    auto a = analyze_store(store_, *end, *lookback, opts_.max_traces);
    if (!a) return std::move(a).error();
    auto b = std::make_shared<const bodies>(bodies{to_json(a->graph), to_json(a->coupling)});
    std::lock_guard lock(mutex_);
    last_ = b;
    computed_ms_ = now_ms;
    end_ = *end;
    lookback_ = *lookback;
    return b;
  }

 private:
  const tracing::span_store& store_;
  const route_options opts_;
  std::mutex mutex_;
  std::shared_ptr<const bodies> last_;
  std::int64_t computed_ms_ = 0;
  std::int64_t end_ = 0;
  std::int64_t lookback_ = 0;
};

}  // namespace

void add_routes(http::router& r, const tracing::span_store& store, route_options opts) {
  auto cache = std::make_shared<answer_cache>(store, std::move(opts));
  r.add_sync("GET", "/api/outrider/v1/graph", [cache](const http::request& req) {
    auto b = cache->get(req);
    if (!b) return http::response::from_error(b.error());
    return http::response::json(http_ok, (*b)->graph);
  });
  r.add_sync("GET", "/api/outrider/v1/analysis", [cache](const http::request& req) {
    auto b = cache->get(req);
    if (!b) return http::response::from_error(b.error());
    return http::response::json(http_ok, (*b)->report);
  });
}

}  // namespace outrider::analysis
